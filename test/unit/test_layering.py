"""The layering of the package, enforced: rest -> model -> (directory, storage).

* nothing imports ``hatrac.rest`` except the app factory (and ``hatrac.web``,
  which sits above it); only the app factory imports ``hatrac.web``;
* ``hatrac.model`` never imports Flask or Werkzeug;
* ``model.directory`` and ``model.storage`` never import each other;
* SQL text lives only in ``model/directory`` (checked by a crude scan for
  SQL keywords in string literals elsewhere);
* no import circles, counting imports inside functions too (a helper that
  two modules share belongs in a module below both), but not those under
  ``if TYPE_CHECKING:``, which only a type checker runs (the rules above
  count them too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator

PACKAGE = Path(__file__).resolve().parents[2] / "hatrac"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(relative.parts), path


def for_type_checkers(node: ast.AST) -> bool:
    """Whether ``node`` is an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def walk(tree: ast.AST, runtime: bool) -> Iterator[ast.AST]:
    """Every node of ``tree``; with ``runtime``, none in the body of an ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if runtime and for_type_checkers(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def imported(module: str, path: Path, runtime: bool = False) -> set[str]:
    """The names ``module`` imports; with ``runtime``, only the imports Python runs."""
    tree = ast.parse(path.read_text())
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    names = set()
    for node in walk(tree, runtime):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def test_model_does_not_import_the_web_framework():
    for module, path in modules():
        if module.startswith("hatrac.model"):
            bad = {n for n in imported(module, path) if n.split(".")[0] in ("flask", "werkzeug")}
            assert not bad, f"{module} imports {bad}"


def test_nothing_below_rest_imports_rest():
    for module, path in modules():
        if module.startswith(("hatrac.model", "hatrac.auth", "hatrac.cli")):
            bad = {n for n in imported(module, path) if n.startswith("hatrac.rest")}
            assert not bad, f"{module} imports {bad}"


def test_only_the_app_factory_imports_the_web_interface():
    # hatrac.web sits above hatrac.rest: rest asks it for pages through state.pages
    for module, path in modules():
        if module.startswith("hatrac.web") or module == "hatrac.app":
            continue
        bad = {n for n in imported(module, path) if n.startswith("hatrac.web")}
        assert not bad, f"{module} imports {bad}"


def test_directory_and_storage_are_independent():
    for module, path in modules():
        names = imported(module, path)
        if module.startswith("hatrac.model.directory"):
            assert not {n for n in names if n.startswith("hatrac.model.storage")}, module
        if module.startswith("hatrac.model.storage"):
            assert not {n for n in names if n.startswith("hatrac.model.directory")}, module


SQL = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b", re.I)


def test_sql_lives_in_the_directory():
    for module, path in modules():
        if module.startswith("hatrac.model.directory"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.match(node.value), f"SQL text in {module}: {node.value[:60]!r}"


def test_the_client_speaks_only_http():
    """hatrac.client must work against any Hatrac server: it imports nothing else of ours."""
    for module, path in modules():
        if module.startswith("hatrac.client"):
            ours = {n for n in imported(module, path) if n.startswith("hatrac")}
            bad = {n for n in ours if not n.startswith("hatrac.client")}
            assert not bad, f"{module} imports {bad}"


# import circles left, each with the way out: keep this empty
KNOWN_CYCLES: list[set[str]] = []


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, at import time or inside a function
    (not for type checkers alone).

    An import of a module's own package (``from . import x``) is not an edge:
    the package is already being imported when its module is."""
    names = {module for module, _ in modules()}
    graph = {}
    for module, path in modules():
        edges = set()
        for name in imported(module, path, runtime=True):
            while name and name not in names:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for other in graph[node]:
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in order:
            visit(node)
    return found


def test_no_import_cycles():
    found = cycles(import_graph())
    new = [sorted(cycle) for cycle in found if cycle not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in found]
    assert not gone, f"no longer cycles, drop them from KNOWN_CYCLES: {gone}"


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_imports_for_type_checkers_are_no_edges_of_the_cycle_check(tmp_path: Path):
    source = tmp_path / "example.py"
    source.write_text(
        "import typing\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hatrac import typed\nelse:\n    from hatrac import other\n"
        "if typing.TYPE_CHECKING:\n    import hatrac.dotted\n"
        "def f():\n    from hatrac import inner\n"
    )
    every = imported("hatrac.example", source)
    run = imported("hatrac.example", source, runtime=True)
    assert {"hatrac.typed", "hatrac.dotted", "hatrac.other", "hatrac.inner"} <= every
    assert {"hatrac.other", "hatrac.inner"} <= run
    assert not {"hatrac.typed", "hatrac.dotted"} & run
