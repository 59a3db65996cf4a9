"""No import cycles between xlray modules, nor between its packages (the pipeline's stages), counting every import:
top level, inside functions, under TYPE_CHECKING.

A lazy import inside a function hides a cycle from Python but not from a reader: the two modules still cannot be
understood, tested or moved apart. ``from package import name`` counts as importing ``package.name`` when that is
a module, else as importing ``package``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "xlray"


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module under xlray/ (a package by its ``__init__``)."""
    files = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The xlray modules that the module ``name`` (in ``path``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported(name, path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected group of modules, found by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [closed_path(graph, group) for group in groups]


def closed_path(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first, inside the group)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def test_graph_sees_top_level_lazy_and_from_imports():
    graph = import_graph()
    assert len(graph) > 60  # every module under xlray/ was parsed
    assert "xlray.errors" in graph["xlray.configs"]  # a top-level import
    assert "xlray.runtime" in graph["xlray.sweep.run"]  # one inside a function
    assert "xlray.sweep.alignment" in graph["xlray.sweep.trial"]  # `from package import module`


def test_cycles_finds_and_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    folded = stage_graph({"xlray.p.a": {"xlray.q.b"}, "xlray.q.b": {"xlray.q.c"}, "xlray.q.c": {"xlray.p.d"},
                          "xlray.p.d": set()})  # fmt: skip
    assert cycles(folded) == [["xlray.p", "xlray.q", "xlray.p"]]


def stage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto xlray's packages and top-level modules (``xlray.tasks.formats.iob`` is in
    ``xlray.tasks``): a cycle here means two stages of the pipeline each need the other."""

    def stage(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {stage(m): set() for m in graph}
    for module, targets in graph.items():
        folded[stage(module)].update(stage(t) for t in targets if stage(t) != stage(module))
    return folded


def described(found: list[list[str]]) -> str:
    return "; ".join(" -> ".join(cycle) for cycle in found)


def test_no_import_cycles_between_modules():
    found = cycles(import_graph())
    assert not found, f"{len(found)} import cycle(s) between xlray modules: {described(found)}"


def test_no_import_cycles_between_packages():
    found = cycles(stage_graph(import_graph()))
    assert not found, f"{len(found)} import cycle(s) between xlray packages: {described(found)}"
