"""The package's import graph, read from the source: no module imports another module's private
names or a private module of another package, and no modules import each other in a circle
(imports under ``if TYPE_CHECKING:`` are for the type checker only and do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "featviz_widgets"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    found: list[ast.ImportFrom | ast.Import] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """module -> the package modules it imports at run time; and the private imports found."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            else:
                source = _resolve(module, is_package, node)
                targets = []
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append((sub, None) if sub in modules else (source, alias.name))
            for target, name in targets:
                if not target.startswith("featviz_widgets"):
                    continue
                owner = target if target in modules else target.rsplit(".", 1)[0]
                if owner != module:
                    graph[module].add(owner)
                private_module = any(part.startswith("_") and part != "__init__" for part in target.split("."))
                if (name is not None and name.startswith("_") and owner != module) or private_module:
                    private.append(f"{module} imports {target}{'.' + name if name else ''}")
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _parent_packages(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_module_imports_another_modules_private_names() -> None:
    _, private = import_graph()
    assert private == []


def test_the_package_has_no_import_circle() -> None:
    graph, _ = import_graph()
    # A package's __init__ re-exporting its modules is its face, not a circle with them.
    graph = {m: {t for t in targets if t not in _parent_packages(m)} for m, targets in graph.items()}
    assert cycles(graph) == []


def _home(module: str) -> str:
    """The package a module belongs to: ``featviz_widgets.<engine|runner|view|atlas>``, or the
    root for the top-level modules (cli, export, lab, ...)."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1] / "__init__.py").exists():
        return ".".join(parts[:2])
    return parts[0]


def test_packages_import_each_other_through_their_faces_only() -> None:
    """Across packages, a module imports a package's face (``runner``, ``engine``, or a room's:
    ``engine.core``, ``engine.image``, ...), never a module inside it: a package can move its
    files without the others noticing."""
    graph, _ = import_graph()
    faces = {m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    deep = [
        f"{m} imports {t}"
        for m, targets in graph.items()
        for t in targets
        if _home(t) != _home(m) and _home(t) != "featviz_widgets" and t not in faces
    ]
    assert deep == []


def test_the_walker_sees_circles_and_private_imports() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .x import y\nfrom .z import _w\n")
    found = _runtime_imports(tree)
    assert len(found) == 2 and isinstance(found[1], ast.ImportFrom) and found[1].module == "z"
