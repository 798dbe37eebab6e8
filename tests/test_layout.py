"""The package's shape: no import cycle among its modules at run time (imports inside functions
included, ``if TYPE_CHECKING:`` blocks excluded), Docker clients made in one module only, podman's
service started in one module only, the libraries' exception types named in one module only
(enginefaults.py), no module over 400 lines, and no function over 60 lines or 8 parameters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_multiarch"
MAX_LINES = 400


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.glob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(child for child in ast.iter_child_nodes(node) if not _is_type_checking_block(child))
    return found


def import_graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module → the package modules it imports at run time, wherever the import statement is."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "pytest_multiarch":
                    targets = [alias.name for alias in node.names]
                elif node.module.startswith("pytest_multiarch."):
                    targets = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("pytest_multiarch.")]
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
                value = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
                if isinstance(value, str) and value.startswith("pytest_multiarch."):
                    targets = [value.split(".")[1]]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at its end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_package_modules():
    graph = import_graph(_modules())
    graph.pop("__init__", None)  # its lazy __getattr__ exports are for users, not for the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_through_an_import_inside_a_function():
    modules = {
        "a": ast.parse("from pytest_multiarch import b\n"),
        "b": ast.parse("def f():\n    from pytest_multiarch.c import x\n"),
        "c": ast.parse("from typing import TYPE_CHECKING\nimport pytest_multiarch.a\n"),
        "d": ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytest_multiarch import a\n"),
    }
    graph = import_graph(modules)
    assert graph["d"] == set()  # type-checking imports do not count
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    modules["c"] = ast.parse("x = 1\n")
    assert find_cycle(import_graph(modules)) is None


CLIENT_MAKERS = ("docker.from_env", "docker.DockerClient", "DockerClient(", "APIClient(", "DockerContainer(")


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_docker_clients_are_made_only_in_the_engine_module(path):
    if path.name == "engine.py":
        return
    code = "\n".join(
        ast.unparse(node) for node in _runtime_nodes(ast.parse(path.read_text())) if isinstance(node, ast.Call)
    )
    made = [maker for maker in CLIENT_MAKERS if maker in code]
    assert not made, f"{path.name} makes a Docker client ({made}): take an Engine (engine.py) instead"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by concept"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_the_podman_service_is_started_only_in_the_podman_module(path):
    """podman.py starts it, and stops it by pid at the session's end (or its wrapper does when
    pytest dies): a service started anywhere else could outlive the session."""
    if path.name == "podman.py":
        return
    starts = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.List, ast.Tuple)):  # ["podman", "system", "service", ...]
            words = [item.value for item in node.elts if isinstance(item, ast.Constant)]
            if "system" in words and "service" in words:
                starts.append(ast.unparse(node))
    assert not starts, f"{path.name} starts podman's service ({starts}): use podman.PodmanService"


# -- one layer for the libraries' exception types -----------------------------------------------

FAULT_LAYER = "enginefaults.py"  # the one module that knows them (and classifies what they mean)
LIBRARIES = ("docker", "requests", "urllib3", "python_on_whales")
EXCEPTION_MODULES = tuple(f"{library}.{part}" for library in LIBRARIES for part in ("errors", "exceptions"))
EXCEPTION_NAME = re.compile(r"(Error|Exception|Timeout|NotFound|Conflict|errors|exceptions)$")


def exception_type_uses(tree: ast.AST) -> list[str]:
    """Where a module names a library's exception types itself (type hints included): an import
    of an exception module (``docker.errors``, ``requests.exceptions``, ``urllib3.exceptions``,
    ``python_on_whales.exceptions``) or of an exception from a library's top level
    (``from requests import ConnectionError``), an attribute path through an exception module,
    and a library's attribute caught in ``except`` or tested with isinstance/issubclass
    (``requests.ConnectionError``). Subclassing one (http.RequestTimeout, public API) is allowed."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(EXCEPTION_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(EXCEPTION_MODULES):
                found.append(f"from {node.module} import ...")
            elif node.module in LIBRARIES:
                found += [f"from {node.module} import {a.name}" for a in node.names if EXCEPTION_NAME.search(a.name)]
        elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith(EXCEPTION_MODULES):
            found.append(ast.unparse(node))
        caught: ast.AST | None = None
        if isinstance(node, ast.ExceptHandler):
            caught = node.type
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("isinstance", "issubclass") and node.args[1:]:
            caught = node.args[1]
        for part in ast.walk(caught) if caught is not None else ():
            if isinstance(part, ast.Attribute) and ast.unparse(part).split(".")[0] in LIBRARIES:
                found.append(ast.unparse(part))
    return sorted(set(found))


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_only_the_fault_layer_names_the_libraries_exception_types(path):
    """What a failed engine, CLI or HTTP call means is decided in one place (enginefaults.py),
    so that an engine gone reads the same everywhere; others catch what it hands out
    (``except docker_errors():``) or ask it (``unless_missing``, ``lost_connection``)."""
    if path.name == FAULT_LAYER:
        return
    uses = exception_type_uses(ast.parse(path.read_text()))
    assert not uses, f"{path.name} names the libraries' exception types ({uses}): ask enginefaults.py instead"


def test_the_exception_type_finder_finds_each_way_of_naming_them():
    def uses(code: str) -> list[str]:
        return exception_type_uses(ast.parse(code))

    assert uses("from docker.errors import NotFound") == ["from docker.errors import ..."]
    assert uses("import python_on_whales.exceptions") == ["python_on_whales.exceptions"]
    assert uses("from requests import ConnectionError, Session") == ["from requests import ConnectionError"]
    assert uses("from docker import errors") == ["from docker import errors"]
    assert uses("import docker\nx = docker.errors.APIError") == ["docker.errors", "docker.errors.APIError"]
    caught = "try:\n    f()\nexcept (requests.RequestException, OSError):\n    pass"
    assert uses(caught) == ["requests.RequestException"]
    assert uses("ok = isinstance(e, requests.exceptions.ConnectTimeout)") == [
        "requests.exceptions",
        "requests.exceptions.ConnectTimeout",
    ]
    assert uses("import requests\nclass T(Exception, requests.Timeout): ...\nrequests.Session()") == []
    assert uses("try:\n    f()\nexcept docker_errors(EngineRefused):\n    pass") == []


# -- function size -----------------------------------------------------------------------------

MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8
SIZE_EXEMPT = {"declare.multiarch_fixtures"}  # the public declaration API: one keyword per setting


def oversized_functions(module: str, tree: ast.AST) -> list[str]:
    """Each function or method of ``tree`` over MAX_FUNCTION_LINES lines (from its ``def`` to
    its last line) or over MAX_PARAMETERS parameters (``self`` and ``cls`` not counted, ``*args``
    and ``**kwargs`` counted), as ``module.name: why``."""
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        name = f"{module}.{node.name}"
        if name in SIZE_EXEMPT:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        arguments = node.args
        named = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        if named[:1] in (["self"], ["cls"]):
            named = named[1:]
        count = len(named) + len(arguments.kwonlyargs) + bool(arguments.vararg) + bool(arguments.kwarg)
        if lines > MAX_FUNCTION_LINES:
            found.append(f"{name}: {lines} lines")
        if count > MAX_PARAMETERS:
            found.append(f"{name}: {count} parameters")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_function_is_over_60_lines_or_8_parameters(path):
    """A function that long or that wide does several things: split it into helpers that each
    guarantee one, or group related parameters into a small frozen dataclass."""
    over = oversized_functions(path.stem, ast.parse(path.read_text()))
    assert not over, f"split or regroup: {over}"


def test_the_size_finder_counts_lines_and_parameters_as_said():
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    assert oversized_functions("m", ast.parse(f"def f():\n{body}\n")) == []  # 60 lines
    assert oversized_functions("m", ast.parse(f"def f():\n{body}\n    x = 0\n")) == ["m.f: 61 lines"]
    method = "class C:\n    def f(self, a, b, c, d, e, g, h, *args):\n        pass\n"
    assert oversized_functions("m", ast.parse(method)) == []
    wide = "def f(a, b, c, d, e, g, h, *, i, **kw):\n    pass\n"
    assert oversized_functions("m", ast.parse(wide)) == ["m.f: 9 parameters"]
    exempt = "def multiarch_fixtures(a, b, c, d, e, g, h, i, j):\n    pass\n"
    assert oversized_functions("declare", ast.parse(exempt)) == []
