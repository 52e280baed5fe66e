"""Every public function of the package and of the benchmark has type hints.

Public: a function at module level, or a method of a public class (however
nested in classes), whose name does not start with ``_`` (so ``__init__`` and
the other dunder methods are not checked). Each of its parameters but
``self``, ``cls``, ``*args`` and ``**kwargs`` has an annotation, and so does
its return. The check reads the source with :mod:`ast`, importing nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Union

PROJECT = Path(__file__).resolve().parents[2]
ROOTS = ("hatrac", "bench")

# public functions allowed to lack type hints for now, each with what it lacks
# (none left): an entry is for a function whose file another change is
# rewriting, dropped once the function has them
PENDING: dict[str, set[str]] = {}

Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def sources() -> Iterator[tuple[str, Path]]:
    for root in ROOTS:
        for path in sorted((PROJECT / root).rglob("*.py")):
            yield ".".join(path.relative_to(PROJECT).with_suffix("").parts), path


def public_functions(tree: ast.AST, prefix: str) -> Iterator[tuple[str, Function]]:
    """(qualified name, node) of the module's public functions and public methods."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("_"):
                yield f"{prefix}.{node.name}", node
        elif isinstance(node, ast.ClassDef):
            if not node.name.startswith("_"):
                yield from public_functions(node, f"{prefix}.{node.name}")
        elif isinstance(node, (ast.If, ast.Try)):
            yield from public_functions(node, prefix)


def unannotated(function: Function) -> set[str]:
    """The parameters (and ``return``) of ``function`` that have no annotation."""
    arguments = function.args
    parameters = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
    missing = {p.arg for p in parameters if p.annotation is None and p.arg not in ("self", "cls")}
    if function.returns is None:
        missing.add("return")
    return missing


def lacking() -> dict[str, set[str]]:
    """Every public function without full type hints, and what it lacks."""
    found = {}
    for module, path in sources():
        for name, node in public_functions(ast.parse(path.read_text()), module):
            missing = unannotated(node)
            if missing:
                found[name] = missing
    return found


def test_every_public_function_has_type_hints():
    new = {name: sorted(missing) for name, missing in lacking().items() if name not in PENDING}
    assert not new, f"public functions without type hints (name: what it lacks): {new}"


def test_the_pending_list_names_functions_still_without_them():
    found = lacking()
    done = {
        name: sorted(missing) for name, missing in PENDING.items() if found.get(name) != missing
    }
    assert not done, f"these have changed: drop or correct their PENDING entries: {done}"


def test_the_check_finds_what_lacks_a_hint():
    tree = ast.parse(
        "def typed(a: int, *args, b: str = '', **kwargs) -> None: ...\n"
        "def bare(a, b: int): ...\n"
        "def _private(a): ...\n"
        "class Public:\n"
        "    def method(self, a) -> int: ...\n"
        "    @classmethod\n"
        "    def build(cls) -> 'Public': ...\n"
        "    def __init__(self, a): ...\n"
        "    class Inner:\n"
        "        def deep(self): ...\n"
        "class _Hidden:\n"
        "    def method(self, a): ...\n"
    )
    found = {name: unannotated(node) for name, node in public_functions(tree, "m")}
    assert found == {
        "m.typed": set(),
        "m.bare": {"a", "return"},
        "m.Public.method": {"a"},
        "m.Public.build": set(),
        "m.Public.Inner.deep": {"return"},
    }


def test_the_check_sees_the_package_and_the_benchmark():
    names = {module for module, _ in sources()}
    assert {"hatrac.app", "bench.ab"} <= names
    assert len(names) > 100
