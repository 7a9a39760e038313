"""Build hook: ship the top-level registry.yaml inside the wheel as hub/registry.yaml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalog(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "hub" / "registry.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "registry.yaml", target)


setup(cmdclass={"build_py": BuildWithCatalog})
