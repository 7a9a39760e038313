"""The base pipeline's batch plan: longest first, at most the batch size, cut to pad the fewest positions."""
from __future__ import annotations

import ast
import itertools
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.errors import HubError
from hub.tasks import base
from hub.tasks.base import BATCH_COST_IN_INPUTS, Pipeline


class Lengths(Pipeline):
    """Inputs are their own lengths (ints); None for an input without one."""

    task = "text-embedding"

    def __init__(self):
        super().__init__(spec=SimpleNamespace(id="lengths"), model=None, device_manager=None)

    def length(self, item):
        return item

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, **kwargs):
        return batch

    def postprocess(self, outputs, items, **kwargs):
        return list(outputs)


def plan(lengths, size):
    return [[lengths[i] for i in batch] for batch in Lengths().batch_plan(lengths, size)]


def plan_cost(lengths, batches, batch_cost):
    """Padded positions (count x longest per batch) plus the fixed cost of each batch."""
    return sum(len(b) * max(lengths[i] for i in b) + batch_cost for b in batches)


def mean_batch_cost(lengths):
    return max(1.0, BATCH_COST_IN_INPUTS * sum(lengths) / len(lengths))


def test_inputs_of_equal_length_fill_whole_batches():
    assert plan([7] * 10, 4) == [[7] * 4, [7] * 4, [7] * 2]


def test_short_inputs_are_not_padded_to_a_long_ones_length():
    assert plan([100, 100, 100, 100, 10, 10, 10, 10], 8) == [[100] * 4, [10] * 4]
    assert plan([300] + [10] * 20, 32) == [[300], [10] * 20]


def test_a_few_shorter_inputs_ride_along_rather_than_cost_a_batch_of_their_own():
    assert plan([100] * 6 + [95, 95], 8) == [[100] * 6 + [95, 95]]


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_is_the_cheapest_of_every_way_to_cut_the_sorted_inputs(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 10))]
    size = rng.choice([1, 2, 3, 8])
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cost = mean_batch_cost(lengths)
    cheapest = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        starts = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [len(order)]
        batches = [order[a:b] for a, b in zip(starts, starts[1:])]
        if all(len(b) <= size for b in batches):
            cheapest = min(cheapest, plan_cost(lengths, batches, cost))
    assert plan_cost(lengths, Lengths().batch_plan(lengths, size), cost) == pytest.approx(cheapest)


@pytest.mark.parametrize("seed", range(20))
def test_every_input_is_in_one_batch_longest_first_and_no_plan_costs_more_than_fixed_batches(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 300))]
    size = rng.choice([1, 2, 8, 32])
    batches = Lengths().batch_plan(lengths, size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths, reverse=True)
    assert all(1 <= len(b) <= size for b in batches)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    fixed = [order[i:i + size] for i in range(0, len(order), size)]
    cost = mean_batch_cost(lengths)
    assert plan_cost(lengths, batches, cost) <= plan_cost(lengths, fixed, cost)


def test_many_inputs_are_planned_in_windows_and_each_is_still_in_one_batch(monkeypatch):
    monkeypatch.setattr(base, "PLAN_WINDOW", 50)
    rng = random.Random(3)
    lengths = [rng.randint(1, 300) for _ in range(400)]
    batches = Lengths().batch_plan(lengths, 16)
    assert sorted(i for b in batches for i in b) == list(range(400))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert [lengths[i] for b in batches for i in b] == sorted(lengths, reverse=True)


def test_inputs_without_lengths_keep_their_order_in_fixed_batches():
    class NoLengths(Lengths):
        def length(self, item):
            return None

    assert NoLengths().batch_plan(list("abcdefg"), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_parallel_batches_run_side_by_side_and_results_keep_the_input_order():
    import threading
    from dataclasses import dataclass

    from hub.tasks.results import Result

    @dataclass
    class Ran(Result):
        n: int
        thread: str

    barrier = threading.Barrier(2, timeout=10)  # passes only if two batches run at once

    class Parallel(Lengths):
        parallel_batches = 2

        def run_one_batch(self, chunk, **kwargs):
            barrier.wait()
            return [Ran(n, threading.current_thread().name) for n in chunk]

    lengths = [3, 9, 1, 7, 5, 2, 8, 4]
    results = Parallel().run_batches(lengths, 2, False)
    assert [r.n for r in results] == lengths
    assert {r.thread.split("_")[0] for r in results} == {"hub-batch"}


def test_an_error_in_a_parallel_batch_reaches_the_caller_and_later_batches_are_not_run():
    import time

    ran = []

    class Failing(Lengths):
        parallel_batches = 2

        def run_one_batch(self, chunk, **kwargs):
            if 90 in chunk:
                raise ValueError("bad input 90")
            time.sleep(0.01)
            ran.extend(chunk)
            return list(chunk)

    lengths = list(range(100, 0, -1))  # batches of 2, longest first: the one holding 90 is the sixth of 50
    with pytest.raises(ValueError, match="bad input 90"):
        Failing().run_batches(lengths, 2, False)
    assert len(ran) < 40, "the batches queued behind the error were dropped"


# -- the members the core calls are declared on Pipeline, never probed ------------------------------------
HUB = Path(base.__file__).resolve().parents[1]
PIPELINE_NAME = re.compile(r"(^|\.)(pipe|pipeline|reference|candidate)$")  # how the core names pipelines
PIPELINE_CLASS = {"hub/export/backends.py": "cls", "hub/export/exporter.py": "type(reference)"}  # ... and their classes


def _pipeline_class_body() -> list[ast.stmt]:
    tree = ast.parse(Path(base.__file__).read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Pipeline").body


def declared_members() -> dict[str, str | None]:
    """Every member the Pipeline class body declares, with its docstring (an attribute's is the string after it)."""
    body, found = _pipeline_class_body(), {}
    for i, node in enumerate(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = ast.get_docstring(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            after = body[i + 1] if i + 1 < len(body) else None
            doc = after.value.value if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                                        and isinstance(after.value.value, str)) else None
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(target, ast.Name):
                    found[target.id] = doc
    return found


def _is_pipeline(expr: ast.expr, path: str) -> bool:
    text = ast.unparse(expr)
    return bool(PIPELINE_NAME.search(text)) or PIPELINE_CLASS.get(path) == text


def probes(source: str, path: str, members: set[str]) -> list[str]:
    """``hasattr(...)`` and ``getattr(..., default)`` on a pipeline (or for a member only pipelines have)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2):
            continue
        probe = node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) == 3)
        name = node.args[1].value if isinstance(node.args[1], ast.Constant) else None
        if probe and (_is_pipeline(node.args[0], path) or name in members):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def used_members(source: str, path: str) -> dict[str, str]:
    """Each attribute the code reads from a pipeline or a pipeline class, with where."""
    return {node.attr: f"{path}:{node.lineno}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and _is_pipeline(node.value, path) and not node.attr.startswith("__")}


def core_sources():
    for path in sorted(HUB.rglob("*.py")):
        yield path.relative_to(HUB.parent).as_posix(), path.read_text(encoding="utf-8")


# names that other objects have too (a spec's options, a device manager's backend): probing those is not flagged
SHARED_NAMES = {"task", "spec", "model", "options", "warnings", "device_manager", "limits", "length", "prepare",
                "forward", "warn"}


def test_the_core_never_probes_a_pipeline_for_a_member():
    members = set(declared_members()) - SHARED_NAMES
    found = [probe for path, source in core_sources() for probe in probes(source, path, members)]
    assert not found, "declare these members on hub.tasks.base.Pipeline and use them plainly:\n" + "\n".join(found)


@pytest.mark.parametrize("code", [
    "hasattr(pipeline, 'tokenizer')", "getattr(entry.pipeline, 'pair_batching', False)",
    "getattr(self.pipe, name, None)", "hasattr(cls, 'from_runtime')", "getattr(thing, 'sample_inputs', None)",
])
def test_the_probe_check_finds_a_probe(code):
    members = set(declared_members()) - SHARED_NAMES
    assert probes(code, "hub/export/backends.py", members)


@pytest.mark.parametrize("code", ["getattr(spec, 'options', None)", "pipeline.tokenizer", "getattr(pipe, name)",
                                  "getattr(device_manager, 'backend', 'torch')"])
def test_the_probe_check_leaves_plain_use_alone(code):
    assert not probes(code, "hub/api.py", set(declared_members()) - SHARED_NAMES)


def test_every_member_the_core_uses_is_declared_on_pipeline_with_a_docstring():
    declared, used = declared_members(), {}
    for path, source in core_sources():
        used.update(used_members(source, path))
    assert {"from_spec", "from_runtime", "export_graphs", "tokenizer", "pair_batching", "sample_inputs"} <= set(used)
    undeclared = sorted(f"{name} ({where})" for name, where in used.items() if name not in declared)
    assert not undeclared, f"the core uses pipeline members Pipeline does not declare: {undeclared}"
    bare = sorted(name for name in used if not declared[name])
    assert not bare, f"Pipeline members without a docstring: {bare}"


def test_every_public_member_of_pipeline_has_a_docstring():
    bare = sorted(name for name, doc in declared_members().items() if not doc and not name.startswith("_"))
    assert not bare, f"Pipeline members without a docstring: {bare}"


def test_the_declared_defaults_say_what_a_pipeline_does_not_have():
    pipe = Lengths()
    assert (pipe.tokenizer, pipe.max_length(), pipe.sample_inputs(3), pipe.sample_options()) == (None, None, None, None)
    assert pipe.pair_batching is False and pipe.concurrent_batches is False and pipe.estimate_bytes(4, {}) is None
    assert Lengths.export_members_missing() == list(Pipeline.EXPORT_MEMBERS)
    for call in (lambda: pipe.export_graphs(["a"], []), lambda: pipe.graph_inputs("g", ["a"]),
                 lambda: pipe.export_assets("/nowhere"), lambda: Lengths.from_runtime(None, None, None)):
        with pytest.raises(HubError, match=r"Lengths \(text-embedding\) does not support export.*--backend torch"):
            call()
    with pytest.raises(HubError, match="Lengths does not define from_spec.*model 'm'"):
        Lengths.from_spec(SimpleNamespace(id="m"), None)
    for call in (lambda: pipe.embed_texts(["a"]), lambda: pipe.embed_images([])):
        with pytest.raises(HubError, match="Lengths .text-embedding. does not embed"):
            call()


def test_a_class_that_overrides_the_export_members_can_be_exported_and_its_subclasses_too():
    class Exportable(Lengths):
        def export_graphs(self, texts, images):
            return []

        def graph_inputs(self, name, items):
            return {}

        def export_assets(self, directory):
            return None

        @classmethod
        def from_runtime(cls, spec, device_manager, runtime, **options):
            return cls()

    class Child(Exportable):
        pass

    class Partial(Lengths):
        def export_graphs(self, texts, images):
            return []

    assert Exportable.export_members_missing() == [] and Child.export_members_missing() == []
    assert Partial.export_members_missing() == ["graph_inputs", "export_assets", "from_runtime"]
