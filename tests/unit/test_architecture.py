"""The direction of imports in vbank: no module imports itself round a cycle (counting the
imports made only for type checking, and those inside functions), no two packages import
each other, and the pure layers import nothing above them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import vbank

ROOT = Path(vbank.__file__).resolve().parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("vbank", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def imported(module: str, path: Path) -> Iterator[str]:
    """The vbank modules ``module`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[:None if is_package else -1]
                package = package[:len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            # "from vbank.rtc import peer" imports the module vbank.rtc.peer
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # an attribute of a module
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


def graph() -> dict[str, set[str]]:
    return {name: set(imported(name, path)) for name, path in MODULES.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """``vbank.rtc.peer`` → ``vbank.rtc``; top-level modules are their own package."""
    return ".".join(module.split(".")[:2])


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert cycles(graph()) == []


def test_no_two_packages_import_each_other() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in graph().items():
        packages.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(module))
    assert cycles(packages) == []


def test_the_pure_layers_import_nothing_above_them() -> None:
    allowed = {"vbank.domain": {"vbank", "vbank.domain"},
               "vbank.media": {"vbank", "vbank.media"}}
    edges = graph()
    for layer, may in allowed.items():
        for module, targets in edges.items():
            if package_of(module) == layer:
                above = {t for t in targets if package_of(t) not in may}
                assert not above, f"{module} imports {sorted(above)}"


def test_the_checker_sees_a_cycle_and_an_import_made_only_for_type_checking(
        tmp_path: Path) -> None:
    # what the tests above rely on: Business once reached back to Branch under
    # TYPE_CHECKING; that counts as an import, and a cycle is found
    written = tmp_path / "business.py"
    written.write_text("from typing import TYPE_CHECKING\n"
                       "if TYPE_CHECKING:\n    from vbank.branch import Branch\n")
    assert set(imported("vbank.business", written)) == {"vbank.branch"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
