"""The layer contract of ``hub/``: each module imports only from its own layer or lower ones, and no import
cycle exists anywhere in ``hub/`` or the shipped plugins, counting imports inside functions.

Bottom-up (see ``LAYER_OF``; a package entry covers its submodules unless one has an entry of its own, except
for the top package and ``OWN_ENTRY_ONLY``, where every module needs its own):

1. values and utilities: errors, io, cache, refs, options, results, ``TaskInfo``, ``ModelSpec``;
2. the contract: hookspecs, ``Pipeline``, ``TrainAdapter`` / ``TrainKind``, the core's task declarations;
3. the plugin manager: ``hub.plugins``, its entry-point cache, and asking a plugin for a model's options;
4. tables built from plugins: the task table, the catalogue, run directories, devices, weights;
5. services: api, export, bench store, measure, train, batch;
6. the plugin author's kit: imported by plugins only, never by the core;
7. front ends: cli, the ``command`` modules of the services, serve, client, testing, recommend.

An import under ``if TYPE_CHECKING:`` runs nothing, so it may name a type of a higher layer (as pytest's
hookspec does); it still counts for cycles. A plugin (``plugins/*/mmhub_*``) imports hub modules of layers
1 to 6 only (never a front end) and no other plugin's package. ``python -m hub.layers`` prints the report
and exits 1 when the contract is broken; ``tests/test_layers.py`` runs it on every test run.
"""
from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

NAMES = {1: "values", 2: "contract", 3: "plugin manager", 4: "tables", 5: "services", 6: "author kit",
         7: "front ends"}
LAYER_OF = {
    # 1 values and utilities
    "hub": 1, "hub.errors": 1, "hub.io": 1, "hub.outputs": 1, "hub.stdio": 1, "hub.cache": 1, "hub.refs": 1,
    "hub.options": 1, "hub.inputs": 1, "hub.run_inputs": 1, "hub.published": 1, "hub.spec": 1, "hub.declared": 1, "hub.safe_yaml": 1,
    "hub.plugin_api": 1, "hub.layers": 1, "hub.tasks.info": 1, "hub.tasks.results": 1,
    "hub.tasks.results_audio": 1, "hub.tasks.results_caption": 1, "hub.tasks.results_qa": 1,
    "hub.tasks.results_seq2seq": 1, "hub.tasks.finite": 1, "hub.tasks.serialisable": 1,
    # 2 the contract
    "hub.hookspecs": 2, "hub.tasks.base": 2, "hub.tasks.builtin": 2, "hub.train.adapter": 2,
    # 3 the plugin manager
    "hub.plugins": 3, "hub.entry_points": 3, "hub.model_options": 3,
    # 4 tables built from plugins
    "hub.tasks": 4, "hub.tasks.table": 4, "hub.registry": 4, "hub.local": 4, "hub.device": 4, "hub.weights": 4,
    "hub.runtimes": 4,
    # 5 services
    "hub.api": 5, "hub.export": 5, "hub.benchstore": 5, "hub.measure": 5, "hub.train": 5, "hub.batch": 5,
    "hub.pinning": 5, "hub.install": 5,
    # 6 the plugin author's kit
    "hub.plugin_kit": 6,
    # 7 front ends
    "hub.cli": 7, "hub.cli_commands": 7, "hub.cli_types": 7, "hub.views": 7, "hub.client": 7, "hub.serve": 7,
    "hub.testing": 7, "hub.recommend": 7, "hub.export.command": 7, "hub.batch.command": 7,
    "hub.measure.command": 7, "hub.train.commands": 7,
}
OWN_ENTRY_ONLY = {"hub.tasks"}  # packages whose modules lie in several layers: each new one needs its own entry
PLUGIN_MAX_LAYER = 6
KIT_LAYER = 6  # imported by plugins only: no module of the core imports it, whatever its layer


def modules(root: Path, pattern: str) -> dict[str, Path]:
    """Dotted module name -> file, for every package directory under ``root`` matching ``pattern``."""
    found = {}
    for base in sorted(root.glob(pattern)):
        for path in sorted(base.rglob("*.py")):
            found[".".join(path.relative_to(base.parent).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known) -> list[tuple[str, int, bool]]:
    """(imported module, line, under TYPE_CHECKING) for every import in the file, at the top or in a function;
    ``from . import x`` is resolved, and a name is cut back to the longest module in ``known``."""
    found = []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for level, module, names, line, guarded in _statements(path.read_text(encoding="utf-8")):
        if level is None:  # import a.b, c
            targets = list(names)
        else:
            base = ".".join(package[: len(package) - level + 1]) if level else ""
            mod = f"{base}.{module}" if base and module else module or base
            targets = [mod] + [f"{mod}.{n}" for n in names]
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target != name and (target, line, guarded) not in found:
                found.append((target, line, guarded))
    return found


@functools.lru_cache(maxsize=4096)
def _statements(text: str) -> tuple:
    """(level or None for ``import``, module, names, line, under TYPE_CHECKING) of every import statement."""
    found = []

    def visit(node, typing_only):
        for child in ast.iter_child_nodes(node):
            guarded = typing_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                found.append((None, None, tuple(a.name for a in child.names), child.lineno, guarded))
            elif isinstance(child, ast.ImportFrom):
                found.append((child.level, child.module, tuple(a.name for a in child.names), child.lineno, guarded))
            visit(child, guarded)

    visit(ast.parse(text), False)
    return tuple(found)


def layer(name: str, layer_of: dict) -> int | None:
    """The layer of ``name``: its own entry, else its nearest package's below the top one; None otherwise."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):  # never the top package's entry: a new module there must get its own
        package = ".".join(parts[:end])
        found = layer_of.get(package) if end == len(parts) or package not in OWN_ENTRY_ONLY else None
        if found is not None:
            return found
    return layer_of.get(name)


def cycles(edges: dict[str, set]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def enter(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return node, iter(sorted(edges[node]))

    for start in edges:
        if start in index:
            continue
        work = [enter(start)]
        while work:
            node, rest = work[-1]
            nxt = next(rest, None)
            if nxt is not None:
                if nxt not in index:
                    work.append(enter(nxt))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = [stack.pop()]
                while component[-1] != node:
                    component.append(stack.pop())
                on_stack.difference_update(component)
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found, key=len, reverse=True)


def problems(root: Path, layer_of: dict = LAYER_OF, core: str = "hub", plugins: str = "plugins/*/mmhub_*") -> list[str]:
    """Every breach of the contract in the tree at ``root``, one line each (empty when it holds)."""
    hub_mods, plugin_mods = modules(root, core), modules(root, plugins)
    known = {**hub_mods, **plugin_mods}
    out = [f"{m}: no layer; add it to hub.layers.LAYER_OF" for m in hub_mods if layer(m, layer_of) is None]
    out += [f"{m}: in hub.layers.LAYER_OF but no such module; remove it" for m in layer_of if m not in hub_mods]
    edges = {m: set() for m in known}
    for mod, path in known.items():
        own, mine = layer(mod, layer_of), mod.split(".")[0]
        for target, line, typing_only in imports(mod, path, known):
            if target not in known:
                continue
            edges[mod].add(target)
            where, theirs = f"{path.relative_to(root)}:{line}: {mod} imports {target}", target.split(".")[0]
            if mod in hub_mods and target in plugin_mods:
                out.append(f"{where}, a plugin; the core never imports plugins")
            elif mod in plugin_mods and theirs != mine and target in plugin_mods:
                out.append(f"{where}, another plugin's package")
            elif mod in plugin_mods and target in hub_mods and (layer(target, layer_of) or 7) > PLUGIN_MAX_LAYER:
                out.append(f"{where}, a front end; plugins import layers 1-{PLUGIN_MAX_LAYER} of hub only")
            elif mod in hub_mods and layer(target, layer_of) == KIT_LAYER and own != KIT_LAYER:
                out.append(f"{where}, the plugin author's kit, which the core never imports (import from where "
                           "the kit's names live)")
            elif mod in hub_mods and not typing_only and own is not None and (layer(target, layer_of) or 0) > own:
                t = layer(target, layer_of)
                out.append(f"{where}, an upward import (layer {own} {NAMES[own]} -> layer {t} {NAMES[t]})")
    out += [f"import cycle of {len(c)} modules: {' '.join(c)}" for c in cycles(edges)]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print every breach under the root given (the current directory by default); 1 when there is any."""
    argv = sys.argv[1:] if argv is None else argv
    found = problems(Path(argv[0] if argv else "."))
    print("\n".join(found) or "layers hold: no upward import, no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
