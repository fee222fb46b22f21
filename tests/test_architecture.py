"""The package's shape stays true: layers import only downwards, stages do not import each other, there is
no import cycle, no source file grows past 500 lines, and the "how to add" examples of
docs/architecture.md run.

Layers, bottom up (docs/architecture.md):

0. core: registry, config, artifacts, records, format, metrics (no model, no task)
1. tasks and models (independent of each other)
2. engines (the inference layer)
3. stages: generate, curate, train, evaluate, serve, report (independent of each other)
4. pipeline and cli

Imports are read from the source with ``ast`` (inside functions too, but not those under
``if TYPE_CHECKING:``), so a lazy import cannot hide an upward dependency. A package whose ``__init__`` calls ``discover(__name__)`` imports all its modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "thinkling"

LAYERS = [
    ["thinkling", "thinkling.registry", "thinkling.config", "thinkling.artifacts", "thinkling.records",
     "thinkling.format", "thinkling.metrics"],
    ["thinkling.tasks", "thinkling.models"],
    ["thinkling.engines"],
    ["thinkling.generate", "thinkling.curate", "thinkling.train", "thinkling.evaluate", "thinkling.serve",
     "thinkling.report"],
    ["thinkling.pipeline", "thinkling.cli"],
]
MAX_LINES = 500


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def unit(mod: str) -> str:
    """The layer entry a module belongs to (its package for packages, itself for top-level modules)."""
    best = ""
    for entries in LAYERS:
        for e in entries:
            if (mod == e or mod.startswith(e + ".")) and len(e) > len(best):
                best = e
    return best


def layer(mod: str) -> int:
    u = unit(mod)
    return next(i for i, entries in enumerate(LAYERS) if u in entries)


def imports(mod: str) -> set[str]:
    """The thinkling modules ``mod`` imports (a ``from pkg import name`` of a submodule counts that module)."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):  # imports for type checkers only are not dependencies
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("thinkling")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("thinkling") and not node.level:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
    if path.name == "__init__.py" and "discover(__name__)" in path.read_text():
        out |= {m for m in MODULES if m.rsplit(".", 1)[0] == mod and not m.rsplit(".", 1)[1].startswith("_")}
    return {m for m in out if m in MODULES and m != mod}


GRAPH = {m: imports(m) for m in MODULES}


def test_the_layers_cover_every_module():
    assert all(unit(m) for m in MODULES), [m for m in MODULES if not unit(m)]


def test_no_module_imports_a_higher_layer_or_another_package_of_its_layer():
    bad = []
    for m, deps in GRAPH.items():
        for d in deps:
            if layer(d) > layer(m):
                bad.append(f"{m} -> {d} (layer {layer(m)} imports layer {layer(d)})")
            elif layer(d) == layer(m) and layer(m) in (1, 3) and unit(d) != unit(m):
                bad.append(f"{m} -> {d} ({unit(m)} and {unit(d)} are independent)")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    # a package's __init__ and the modules it discovers import each other by design only when a
    # module imports the package itself; that is a cycle too, and none is allowed
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_source_files_stay_under_500_lines(mod):
    n = len(MODULES[mod].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[mod]} has {n} lines"


def test_the_checker_sees_upward_and_cyclic_imports(tmp_path):
    """The rules above can fail: an upward import and a cycle planted in a copy of the graph are found."""
    g = {m: set(d) for m, d in GRAPH.items()}
    g["thinkling.format"].add("thinkling.engines")
    assert any(layer(d) > layer(m) for m, deps in g.items() for d in deps)
    g["thinkling.engines"].add("thinkling.format")
    seen, found = set(), False

    def dfs(m, path):
        nonlocal found
        for d in g[m]:
            if d in path:
                found = True
            elif d not in seen:
                seen.add(d)
                dfs(d, path | {d})

    dfs("thinkling.format", {"thinkling.format"})
    assert found


# ----------------------------------------------------------------------------- the page's examples run


DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def doc_examples() -> list[str]:
    text = DOC.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_how_to_add_examples_of_docs_architecture_run():
    """Each "how to add" example of docs/architecture.md registers what it says and that plug-in works."""
    from thinkling.curate.ops import OPS, OpContext
    from thinkling.engines import ENGINES, Request, build_engine, engine_options
    from thinkling.evaluate.strategies import STRATEGIES, Context
    from thinkling.records import Example
    from thinkling.tasks import get_task
    from thinkling.tasks.base import TASKS

    blocks = doc_examples()
    assert len(blocks) == 4, "the page has one example each for a backend, a task, an op and a strategy"
    added = [(ENGINES, "echo"), (TASKS, "double"), (OPS, "short"), (STRATEGIES, "greedy_short")]
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec", dont_inherit=True), {"__name__": "doc_example"})
        assert all(name in reg for reg, name in added)
        [r] = build_engine(engine_options({"backend": "echo", "shout": True})).generate(
            [Request([{"role": "user", "content": "hi"}])])
        assert r.text == "HI"
        task = get_task("double")
        ps = task.problems("test", n=3)
        assert [p.answer for p in ps] == ["200", "202", "204"] and task.score("It is 202.", "202")[1]
        ex = [Example(id=str(i), problem_id=str(i), task="t", level=1, question="q", reasoning="w " * k, answer="1")
              for i, k in enumerate((3, 300))]
        kept, dropped = OPS.get("short").fn(ex, OpContext(task=task, problems={}, options=OPS.get("short").options(),
                                                          workdir=Path(".")))
        assert [e.id for e in kept] == ["0"] and [e.id for e in dropped["too_long"]] == ["1"]
        arith = get_task("arithmetic")
        probs = arith.problems("test", n=2, levels=[2])
        ctx = Context(build_engine(engine_options({"backend": "oracle", "style": "concise"})), arith, 64)
        outs = STRATEGIES.get("greedy_short").fn(ctx, probs, None)
        assert [o.correct for o in outs] == [True, True]
    finally:
        for reg, name in added:
            if name in reg:
                reg.remove(name)
