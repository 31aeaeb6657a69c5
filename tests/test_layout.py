"""The house's shape, checked: no import circles between modules, no module past 400 lines, a
package root that holds the facade and a few shared modules only, and an `import engram` that
costs no heavy optional dependency.

The import graph is read with `ast` from every `import` statement anywhere in a module: at the
top, inside functions (lazy imports) and under `if TYPE_CHECKING:` (a circle there is still a
circle in the design, even if Python never runs it).
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "engram"
MAX_LINES = 400
ROOT_MODULES = {"__init__.py", "__main__.py", "memory.py", "model.py", "query.py",
                "validate.py", "errors.py", "clock.py"}
HEAVY = ("torch", "fastapi", "psycopg", "openai", "anthropic", "litellm",
         "sentence_transformers")


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's modules that `name` (at `path`) imports, with the line of each import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # `from a import b` imports the module a.b when there is one, else a name of a
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules
                       else origin for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imported(name, path, modules):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan), as the list of
    modules along it, the first repeated at the end."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [shortest_circle(graph, group) for group in sorted(groups)]


def shortest_circle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no circle in {group}")  # a strongly connected group has one


def describe(graph: dict[str, dict[str, int]], circle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(circle)]
    return " ; ".join(steps)


def test_the_import_walk_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from engram.model import MemoryEntry\n"
                      "def f():\n    from engram.store import base\n"
                      "    import engram.log.events\n")
    modules = module_files()
    found = {t for t, _ in imported("engram.fake", module, modules)}
    assert found == {"engram.model", "engram.store.base", "engram.log.events"}
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert circles(graph) == [["a", "b", "c", "a"]]


def test_no_import_circles() -> None:
    graph = import_graph()
    found = circles(graph)
    assert not found, "import circles between modules:\n" + "\n".join(
        describe(graph, circle) for circle in found)


def test_no_module_passes_400_lines() -> None:
    long = {str(path.relative_to(SRC)): n for path in module_files().values()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by idea): {long}"


def test_the_package_root_holds_the_facade_and_shared_modules_only() -> None:
    extra = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ROOT_MODULES)
    assert not extra, (f"modules in src/engram/ beyond {sorted(ROOT_MODULES)}: {extra}; "
                       "move each into the folder of its stage")


def test_import_engram_loads_no_heavy_optional_dependency() -> None:
    probe = ("import json, sys; import engram; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", probe],
                          capture_output=True, text=True, check=True, timeout=120)
    loaded = set(json.loads(done.stdout))
    heavy = sorted(loaded.intersection(HEAVY))
    costs = [line for line in done.stderr.splitlines()
             if line.rpartition("|")[2].strip() in heavy]  # -X importtime: self | total | name
    assert not heavy, f"`import engram` imports {heavy}; import them where used:\n" + \
        "\n".join(costs)
