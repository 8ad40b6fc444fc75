"""The import graph has no cycles: not between modules, and not between the packages at any
level (`gateway.pipeline` may import `gateway.routing`, never the other way round). Every
import counts, those under `if TYPE_CHECKING:` and inside functions too: a cycle hidden
there is still two parts that cannot be understood one without the other."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("gateway", "providers")

Graph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def module_graph() -> Graph:
    """Module → the project modules it imports (`from pkg import sub` names `pkg.sub`)."""
    graph: Graph = defaultdict(set)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = _module_name(path)
            graph[module]  # noqa: B018 - a module that imports nothing is still a node
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [f"{node.module}.{alias.name}"
                               if _is_module(f"{node.module}.{alias.name}") else node.module
                               for alias in node.names]
                else:
                    continue
                for target in targets:
                    if target.split(".")[0] in PACKAGES and target != module:
                        graph[module].add(target)
    return dict(graph)


def package_graphs(modules: Graph) -> dict[str, Graph]:
    """For each package, the graph between its direct children (each child standing for
    everything below it). The package's own __init__ is its face, not a child."""
    graphs: dict[str, Graph] = defaultdict(lambda: defaultdict(set))
    for source, targets in modules.items():
        for target in targets:
            a, b = source.split("."), target.split(".")
            shared = 0
            while shared < min(len(a), len(b)) and a[shared] == b[shared]:
                shared += 1
            if shared == len(a) or shared == len(b):
                continue  # a package and its own descendant
            parent = ".".join(a[:shared])
            graphs[parent][".".join(a[:shared + 1])].add(".".join(b[:shared + 1]))
    return {name: dict(graph) for name, graph in graphs.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    modules = {"p.a.x": {"p.b.y"}, "p.b.y": {"p.a.z"}, "p.a.z": set()}
    assert cycles(modules) == []
    assert cycles(package_graphs(modules)["p"]) == [["p.a", "p.b"]]
    assert cycles({"m": {"n"}, "n": {"m"}}) == [["m", "n"]]


def test_no_module_imports_itself_in_a_circle() -> None:
    assert cycles(module_graph()) == []


def test_no_package_imports_itself_in_a_circle() -> None:
    found = {parent: found for parent, graph in package_graphs(module_graph()).items()
             if (found := cycles(graph))}
    assert found == {}
