"""The documentation: README.md and docs/ link only to what exists, the site builds offline with
`mkdocs build --strict`, and the plugin the docs show passes the tests the docs show."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 250
LINK = re.compile(r"\[(?:[^\]]*)\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+).+?\1", "", text, flags=re.S)


def heading_anchors(text: str) -> set[str]:
    """The anchors of a page's headings, as mkdocs (python-markdown's toc) and GitHub write them."""
    from markdown.extensions.toc import slugify

    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", prose_keeping_code(text), flags=re.M):
        plain = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        anchors.add(slugify(plain, "-"))
        anchors.add(re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-"))
    return anchors


def prose_keeping_code(text: str) -> str:
    """The text outside fenced code blocks (a '# comment' in a shell block is no heading)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """Every relative link of ``page`` whose file, or whose #anchor in a Markdown file, does not exist."""
    text = page.read_text() if text is None else text
    problems = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ... are not checked here
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            problems.append(f"{page.relative_to(ROOT)}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest.read_text()):
            problems.append(f"{page.relative_to(ROOT)}: {target}: no heading with the anchor #{anchor}")
    return problems


def test_every_relative_link_and_anchor_of_the_readme_and_docs_resolves():
    assert len(pages()) > 20
    problems = [problem for page in pages() for problem in broken_links(page)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("link", [
    "[a](guide/nothere.md)",                  # a missing page
    "[a](guide/cli.md#no-such-heading)",      # a missing anchor
    "[a](#nowhere-on-this-page)",             # a missing anchor on the page itself
    "[a](../no/such/dir/)",                   # a missing directory
    '[a](serving.md "title")',                # resolved relative to its page (docs/), not to guide/
    "[a](<plugins/hooks.md#no-such-hook>)",   # an angle-bracketed target
])
def test_the_link_check_finds_each_kind_of_broken_link(link):
    page = DOCS / "index.md"
    text = page.read_text() + "\n" + link + "\n"
    assert broken_links(page, text), link


@pytest.mark.parametrize("link", [
    "[a](guide/cli.md#errors-and-exit-codes)",
    "[a](plugins/hooks.md#load_model)",
    "[a](https://example.invalid/whatever)",
    "`[a](nothere.md)`",                      # inline code is no link
    "```\n[a](nothere.md)\n```",              # nor is a code block
])
def test_the_link_check_passes_good_links_and_code(link):
    page = DOCS / "index.md"
    assert not broken_links(page, page.read_text() + "\n" + link + "\n"), link


def test_the_readme_is_short_and_points_to_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    linked = {target.partition("#")[0] for target in LINK.findall(prose(readme))}
    assert {"docs/index.md", "docs/guide/cli.md", "docs/plugins/index.md", "docs/plugins/hooks.md"} <= linked
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300, cwd=config.parent,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.mark.slow
def test_the_docs_build_offline_with_mkdocs_strict(tmp_path):
    done = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    html = {p: p.read_text() for p in (tmp_path / "site").rglob("*.html")}
    assert len(html) >= len(list(DOCS.rglob("*.md")))
    for path, text in html.items():  # the site works offline: no script or stylesheet from elsewhere
        remote = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]+\"", text)
        assert not remote, f"{path.name} loads {remote}"


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["broken link", "broken anchor", "page not in the nav"])
def test_a_docs_mistake_fails_the_strict_build(tmp_path, mistake):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "guide" / "batch.md"
    if mistake == "broken link":
        page.write_text(page.read_text() + "\n[gone](nothere.md)\n")
    elif mistake == "broken anchor":
        page.write_text(page.read_text() + "\n[gone](cli.md#no-such-heading)\n")
    else:
        (tmp_path / "docs" / "guide" / "orphan.md").write_text("# Orphan\n")
    done = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "strict mode" in done.stdout + done.stderr


def doc_blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.slow
def test_the_documented_plugin_passes_the_documented_tests(tmp_path):
    """A third-party plugin and its tests, taken word for word from docs/plugins/, work on the first try:
    the plugin of 'Writing a plugin', installed (a dist-info with its entry point), and the pytest.ini and
    tests of 'Testing a plugin', run by pytest with the hub's test kit."""
    site, project = tmp_path / "site", tmp_path / "project"
    site.mkdir(), project.mkdir()
    writing, testing = DOCS / "plugins" / "index.md", DOCS / "plugins" / "testing.md"
    (site / "mmhub_charcount.py").write_text(next(b for b in doc_blocks(writing, "python") if "mmhub_charcount.py" in b))
    info = site / "mmhub_charcount-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmhub-charcount\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mmhub]\ncharcount = mmhub_charcount\n")
    (project / "pytest.ini").write_text(doc_blocks(testing, "ini")[0])
    (project / "test_charcount.py").write_text(next(b for b in doc_blocks(testing, "python") if "check_model_contract" in b))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)], cwd=project,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b2 passed\b", done.stdout), done.stdout[-2000:]


def named_objects(text: str) -> set[str]:
    """Every dotted name of the hub (``hub.weights.resolve``) that the inline code of a page mentions."""
    names = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        names |= set(re.findall(r"(?<![\w./-])hub(?:\.[A-Za-z_]\w*)+", span))
    return names


def resolves(name: str) -> bool:
    """Whether ``name`` is a module of the hub, or an attribute reached from the longest importable prefix."""
    import importlib

    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_every_hub_name_the_docs_mention_exists():
    """A module, class or function moved or renamed leaves no stale name in README.md or docs/."""
    mentioned = {(name, page.relative_to(ROOT)) for page in pages() for name in named_objects(page.read_text())}
    assert len(mentioned) > 30
    stale = sorted(f"{page}: {name}" for name, page in mentioned if not resolves(name))
    assert not stale, "\n".join(stale)


@pytest.mark.parametrize("name", ["hub.no_such_module", "hub.weights.no_such_function", "hub.tasks.results.Nope"])
def test_a_stale_name_is_found(name):
    assert name in named_objects(f"call `{name}(x)` here") and not resolves(name)
