"""The package's shape: no import cycle between its modules (lazy imports inside functions
included), no module over the size one concept needs, and one declaration per step from
which the components, ``naslid step`` and the pipeline's scheduling are derived."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "naslid"
MAX_LINES = 500
LARGER: dict[str, tuple[int, str]] = {
    "naslid.train": (530, "the resumable single-path training loop and its resume checks"),
    "naslid.kfp_local": (520, "one local run of the compiled pipeline: its watcher and signals"),
}
"""Modules allowed above MAX_LINES, each with the one concept that needs the room."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> nx.DiGraph:
    """naslid module -> the naslid modules it imports, at any depth of its code (lazy imports
    inside functions too; type-checking-only imports not)."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {  # `if TYPE_CHECKING:` imports never run
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a module importing its own package's __init__ is not a dependency between concepts
                if target and target != name and not name.startswith(f"{target}."):
                    graph.add_edge(name, target)
    return graph


def test_the_import_graph_finds_real_imports():
    graph = import_graph()
    assert graph.has_edge("naslid.report.load", "naslid.artifacts")
    assert graph.has_edge("naslid.kfp_components", "naslid.steps")


def test_no_import_cycle():
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert not cycles, f"import cycles: {cycles[:5]}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= LARGER.get(name, (MAX_LINES, ""))[0], f"{name}: {lines} lines"


def test_every_step_is_declared_once_and_everything_derives_from_it():
    from naslid import kfp_components, rerun, steps

    names = list(steps.STEPS)
    assert list(kfp_components.FUNCTIONS) == names
    assert set(rerun.rerunnable()) == {n for n in names if steps.STEPS[n].outputs}
    for name, step in steps.STEPS.items():
        component = kfp_components.FUNCTIONS[name]
        declared = set(component.__code__.co_varnames[: component.__code__.co_argcount])
        wanted = set(step.inputs) | {o.name for o in step.outputs.values()}
        wanted |= {
            kfp_components.CHECKPOINT_ROOT if p == "checkpoint_uri" else p for p in step.params
        }
        if step.metrics:
            wanted.add(kfp_components.METRICS)
        assert declared == wanted, name
