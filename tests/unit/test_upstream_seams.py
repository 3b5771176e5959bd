"""Outside ``stream/upstream/``, no module imports or touches a private name of faust, mode,
aiokafka or prometheus-client, and no module calls ``os._exit``.

Read from the syntax trees (never the text): an import of a private module or name, an
import of one of the libraries' undocumented internal modules, an attribute access of a
name the libraries define as private (unless the module defines that name itself, as its
own), and a method named like one of the libraries' private names in a class derived from
them (an override) are all violations.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAM = ROOT / "stream"
SEAMS = STREAM / "upstream"
LIBRARIES = ("faust", "mode", "aiokafka", "prometheus_client")
#: public-looking modules that the libraries do not document as their interface
INTERNAL_MODULES = (
    "aiokafka.conn",
    "aiokafka.consumer.fetcher",
    "faust.app.base",
    "faust.transport.consumer",
    "faust.transport.drivers",
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library(module: str) -> bool:
    return module.split(".", maxsplit=1)[0] in LIBRARIES


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines: functions, classes, and attributes assigned or declared."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


@cache
def _library_private_names() -> frozenset[str]:
    names: set[str] = set()
    for library in LIBRARIES:
        package = Path(sysconfig.get_paths()["purelib"]) / library
        assert package.is_dir(), library
        for path in package.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names.update(n for n in _defined_names(tree) if _private(n))
    return frozenset(names)


def _modules() -> Iterator[Path]:
    for path in sorted(STREAM.rglob("*.py")):
        if SEAMS not in path.parents:
            yield path


def _upstream_names(tree: ast.AST) -> set[str]:
    """Local names bound to something imported from the libraries or the seam modules."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and (_library(node.module) or node.module.startswith("stream.upstream"))
        ):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names
                         if _library(a.name))  # fmt: skip
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _import_violations(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            imported: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            imported = [alias.name for alias in node.names]
        else:
            continue
        for module in filter(_library, modules):
            if any(_private(part) for part in module.split(".")):
                yield f"line {node.lineno}: imports private module {module}"
            if module.startswith(INTERNAL_MODULES):
                yield f"line {node.lineno}: imports internal module {module}"
            for name in filter(_private, imported):
                yield f"line {node.lineno}: imports private {module}.{name}"
            for name in imported:
                if f"{module}.{name}".startswith(INTERNAL_MODULES):
                    yield f"line {node.lineno}: imports internal module {module}.{name}"


def _override_violations(tree: ast.AST, private: frozenset[str]) -> Iterator[str]:
    upstream = _upstream_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(_root_name(base) in upstream for base in node.bases):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in private:
                yield f"line {item.lineno}: {node.name} overrides private {item.name}"
            targets = [item.target] if isinstance(item, ast.AnnAssign) else (
                item.targets if isinstance(item, ast.Assign) else [])  # fmt: skip
            for target in targets:
                if isinstance(target, ast.Name) and target.id in private:
                    yield f"line {item.lineno}: {node.name} shadows private {target.id}"


def _access_violations(tree: ast.AST, private: frozenset[str]) -> Iterator[str]:
    own = _defined_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private and node.attr not in own:
            yield f"line {node.lineno}: touches private .{node.attr}"
        if (isinstance(node, ast.Attribute) and node.attr == "_exit"
                and _root_name(node) == "os"):  # fmt: skip
            yield f"line {node.lineno}: calls os._exit (exit through mode's crash path)"


def violations(source: str) -> list[str]:
    """Every use of the libraries' private names in one module's ``source``."""
    tree = ast.parse(source)
    private = _library_private_names()
    return [*_import_violations(tree), *_override_violations(tree, private),
            *_access_violations(tree, private)]  # fmt: skip


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_upstream_name_outside_the_seams(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from faust.transport.drivers import aiokafka\n",
        "import aiokafka.conn\n",
        "from aiokafka.conn import create_conn\n",
        "from mode.utils._x import y\n",
        "from prometheus_client.metrics import _build\n",
        "def f(h):\n    return h._upper_bounds\n",
        "def f(app):\n    return app.producer._ensure_producer()\n",
        "import faust\nclass C(faust.App):\n    async def _stop_fetcher(self):\n        pass\n",
        "from stream.upstream.faust import WholeFetchConsumer\n"
        "class C(WholeFetchConsumer):\n    async def _drain_messages(self, f):\n        pass\n",
        "import os\ndef f():\n    os._exit(70)\n",
    ],
)
def test_the_scan_finds_each_kind_of_use(source: str) -> None:
    assert violations(source)


def test_the_scan_leaves_a_modules_own_private_names_alone() -> None:
    source = (
        "class C:\n    def __init__(self):\n        self._value = 1\n"
        "    def same(self, other):\n        return other._value == self._value\n"
    )
    assert violations(source) == []
