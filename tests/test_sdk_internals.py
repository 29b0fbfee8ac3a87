"""Only tap_callcdr/fastpath/sdk.py touches the SDK's internals, and its docstring lists each.

An SDK internal is a `_`-named member of an SDK class the tap builds on (read, called,
overridden or assigned), or anything imported from a `_`-named SDK module or by a `_` name.
The names are taken from the SDK's classes themselves (their `dir()` and the `self._x`
attributes their source sets), so a new SDK version cannot make this test stale.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import typing as t
from functools import cache
from pathlib import Path

import pytest
from singer_sdk import RESTStream, Stream, Tap

import tap_callcdr

PACKAGE = Path(tap_callcdr.__file__).parent
SDK_MODULE = PACKAGE / "fastpath" / "sdk.py"
RECEIVERS = ("self", "cls")  # an attribute of these is the enclosing class's own
REFLECTION = ("getattr", "setattr", "hasattr", "delattr")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_own(node: ast.Attribute) -> bool:
    """`self._x`, `cls._x` or `super()._x`: an attribute of the enclosing class."""
    if isinstance(node.value, ast.Call):
        return getattr(node.value.func, "id", "") == "super"
    return isinstance(node.value, ast.Name) and node.value.id in RECEIVERS


def text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def is_sdk(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "singer_sdk"


@cache
def sdk_private_names(cls: type) -> frozenset[str]:
    """The `_` names an SDK class has: its members, and the attributes its code sets on self."""
    names = {name for name in dir(cls) if is_private(name)}
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return frozenset(names)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and is_own(node):
            names.add(node.attr)
    return frozenset(names)


def inherited_sdk_names(cls: type | None) -> frozenset[str]:
    """The SDK's `_` names a class of ours inherits (none if it builds on no SDK class)."""
    if not isinstance(cls, type):
        return frozenset()
    return frozenset().union(*(sdk_private_names(base) for base in cls.__mro__ if is_sdk(base)))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def tap_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name != "__main__.py")


@cache
def all_sdk_names() -> frozenset[str]:
    """Every SDK `_` name of a class the tap builds on (plus Tap and RESTStream themselves)."""
    classes: set[type] = {Tap, RESTStream, Stream}
    for path in tap_modules():
        module = importlib.import_module(module_name(path))
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__.startswith("tap_callcdr"):
                classes.update(base for base in value.__mro__ if is_sdk(base))
    return frozenset().union(*(sdk_private_names(cls) for cls in classes))


class Finder(ast.NodeVisitor):
    """Each SDK internal a module's code uses, as (line, what)."""

    def __init__(self, module: t.Any) -> None:
        self.module = module
        self.found: list[tuple[int, str]] = []
        self.names: frozenset[str] = frozenset()  # the enclosing class's SDK names

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        parts = (node.module or "").split(".")
        if parts[0] == "singer_sdk":
            private_module = any(is_private(part) for part in parts)
            for alias in node.names:
                if private_module or is_private(alias.name):
                    self.found.append((node.lineno, f"{'.'.join(parts[1:])}.{alias.name}"))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "singer_sdk" and any(is_private(part) for part in parts):
                self.found.append((node.lineno, ".".join(parts[1:])))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer = self.names
        self.names = inherited_sdk_names(getattr(self.module, node.name, None))
        for item in node.body:  # overrides, and class-level settings of SDK attributes
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in self.names:
                self.found.append((item.lineno, item.name))
            targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in self.names:
                    self.found.append((item.lineno, target.id))
        self.generic_visit(node)
        self.names = outer

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr) and node.attr in (self.names if is_own(node) else all_sdk_names()):
            self.found.append((node.lineno, node.attr))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """getattr(x, "_name") and the like."""
        name = text(node.args[1]) if len(node.args) > 1 else None
        if getattr(node.func, "id", "") in REFLECTION and name in all_sdk_names():
            self.found.append((node.lineno, str(name)))
        self.generic_visit(node)


def sdk_internals(source: str, module: t.Any) -> list[tuple[int, str]]:
    finder = Finder(module)
    finder.visit(ast.parse(source))
    return finder.found


def internals_of(path: Path) -> list[tuple[int, str]]:
    return sdk_internals(path.read_text(), importlib.import_module(module_name(path)))


@pytest.mark.parametrize(
    "path", [p for p in tap_modules() if p != SDK_MODULE], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_but_sdk_py_uses_an_sdk_internal(path: Path) -> None:
    found = internals_of(path)
    assert not found, f"{path.relative_to(PACKAGE)} uses SDK internals (move them to sdk.py): {found}"


def test_sdk_py_lists_every_sdk_internal_it_uses() -> None:
    found = {what for _, what in internals_of(SDK_MODULE)}
    # what it is there for: the record loop, requests, config checks, the helpers
    assert {"_sync_records", "_request", "_validate_config", "helpers._util.load_json"} <= found
    docstring = ast.get_docstring(ast.parse(SDK_MODULE.read_text())) or ""
    missing = sorted(what for what in found if f"`{what}`" not in docstring)
    assert not missing, f"fastpath/sdk.py's docstring does not list {missing}"


def test_the_check_finds_each_kind_of_use() -> None:
    """Not vacuous: overrides, calls, reads, assignments and imports are all found."""
    source = textwrap.dedent(
        '''
        from singer_sdk.helpers._util import load_json
        import singer_sdk.helpers._typing
        from singer_sdk.streams.core import _private_function

        class Ours(RESTStream):
            _LOG_REQUEST_METRIC_URLS = True

            def _write_record_message(self, record):
                super()._write_record_message(record)
                self._write_state_message()
                return self._tap, self._stream_version

            def _own_helper(self):  # not the SDK's: fine
                return self._own_value

        class Plain:
            def run(self, stream):
                self._finished = True  # the paginator's name, but this class's own attribute
                stream._finalize_state({})
                return getattr(stream, "_config")
        '''
    )
    module = type("Module", (), {"Ours": type("Ours", (RESTStream,), {}), "Plain": type("Plain", (), {})})
    found = [what for _, what in sdk_internals(source, module)]
    assert found == [
        "helpers._util.load_json",
        "helpers._typing",
        "streams.core._private_function",
        "_LOG_REQUEST_METRIC_URLS",
        "_write_record_message",
        "_write_record_message",
        "_write_state_message",
        "_tap",
        "_stream_version",
        "_finalize_state",
        "_config",
    ]
