"""Only tap_callcdr/fastpath/sdk.py touches the SDK's internals, and its docstring lists each.

An SDK internal is:
- on `self`, `cls` or `super()`: a `_`-named member of the SDK classes the enclosing class
  builds on (read, called, overridden or assigned). These names are taken from the SDK's
  classes themselves (their `dir()` and the `self._x` attributes their source sets);
- on any other object: a `_` name that tap_callcdr does not define itself (no def, class,
  class or module variable, or `self._x = ...` of that name), or one of the names above.
  Such an object may be an SDK object that is no base class of ours (the state manager):
  what the SDK names privately there need not be listed anywhere;
- a public attribute or property of those SDK classes whose type comes from a `_`-named SDK
  module, on any object: a part of the SDK object with a private API (the stream's
  `state_manager`, a `singer_sdk.streams._state.StreamStateManager`). A value a public method
  returns (`get_batch_config`'s `BatchConfig`) is data handed over, not a part;
- anything imported from a `_`-named SDK module or by a `_` name, or reached through one by
  attributes (`singer_sdk.helpers._util.utc_now`) or by `importlib.import_module`.
Nothing here is a list of the SDK's names, so a new SDK version cannot make this test stale.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import textwrap
import typing as t
from functools import cache, cached_property
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
def sdk_classes() -> frozenset[type]:
    """Every SDK class the tap builds on (plus Tap and RESTStream themselves)."""
    classes: set[type] = {Tap, RESTStream, Stream}
    for path in tap_modules():
        module = importlib.import_module(module_name(path))
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__.startswith("tap_callcdr"):
                classes.update(base for base in value.__mro__ if is_sdk(base))
    return frozenset(classes)


@cache
def all_sdk_names() -> frozenset[str]:
    """Every SDK `_` name of a class the tap builds on."""
    return frozenset().union(*(sdk_private_names(cls) for cls in sdk_classes()))


def scope_names(body: list[ast.stmt]) -> t.Iterator[str]:
    """The names a module's or class's body binds (not its functions' locals)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
            if isinstance(node, ast.ClassDef):
                yield from scope_names(node.body)
            continue
        for target in assigned(node):
            yield from (name.id for name in ast.walk(target) if isinstance(name, ast.Name))
        for field in ("body", "orelse", "finalbody"):  # if, try, with, for
            yield from scope_names([n for n in getattr(node, field, []) if isinstance(n, ast.stmt)])
        for handler in getattr(node, "handlers", []):
            yield from scope_names(handler.body)


def assigned(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return node.targets
    return [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []


def defined_names(tree: ast.Module) -> set[str]:
    """The `_` names a module defines: module and class level, defs anywhere, `self._x = ...`."""
    names = set(scope_names(tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        for target in assigned(node):
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and is_own(part):
                    names.add(part.attr)
    return {name for name in names if is_private(name)}


@cache
def own_names() -> frozenset[str]:
    """Every `_` name tap_callcdr defines itself, in any module."""
    return frozenset().union(*(defined_names(ast.parse(path.read_text())) for path in tap_modules()))


def sdk_path(name: str) -> str | None:
    """`singer_sdk.helpers._util` as the check names it (`helpers._util`); None if not the SDK's."""
    parts = name.split(".")
    return ".".join(parts[1:]) if parts[0] == "singer_sdk" else None


def through_private(path: str) -> bool:
    return any(is_private(part) for part in path.split("."))


def private_module(module: str) -> bool:
    return module.split(".")[0] == "singer_sdk" and through_private(module)


@cache
def private_imports(module: str) -> dict[str, t.Any]:
    """What an SDK module imports from `_`-named SDK modules (under TYPE_CHECKING too), by name."""
    source = inspect.getsource(sys.modules[module])
    package = module.split(".")
    names: dict[str, t.Any] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            where = node.module or ""
            if node.level:  # relative to this module's package
                where = ".".join([*package[: len(package) - node.level], where]).strip(".")
            if private_module(where):
                for alias in node.names:
                    names[alias.asname or alias.name] = getattr(importlib.import_module(where), alias.name)
    return names


def private_typed(value: t.Any, module: str) -> bool:
    """Whether an annotation (a type, or its text in `module`) names a `_`-module SDK class; a
    stdlib class a `_` module re-exports (`helpers._compat.Traversable`) is not one."""
    if isinstance(value, type):
        return private_module(value.__module__)
    imported = private_imports(module)
    return any(
        private_typed(imported[word], module)
        for word in re.findall(r"[A-Za-z_]\w*", str(value))
        if isinstance(imported.get(word), type)
    )


@cache
def private_typed_members(cls: type) -> frozenset[str]:
    """Public attributes and properties of an SDK class whose type is a `_`-module SDK class."""
    names = set()
    for name in dir(cls):
        member = inspect.getattr_static(cls, name)
        getter = getattr(member, "fget", None) or getattr(member, "func", None)  # (cached) property
        if name.startswith("_") or not isinstance(member, property | cached_property):
            continue
        hint = getter.__annotations__.get("return") if getter else None
        if hint is not None and private_typed(hint, getter.__module__):
            names.add(name)
    for base in cls.__mro__:
        for name, hint in vars(base).get("__annotations__", {}).items():
            if is_sdk(base) and not name.startswith("_") and private_typed(hint, base.__module__):
                names.add(name)
    return frozenset(names)


@cache
def all_private_typed_members() -> frozenset[str]:
    return frozenset().union(*(private_typed_members(cls) for cls in sdk_classes()))


class Finder(ast.NodeVisitor):
    """Each SDK internal a module's code uses, as (line, what)."""

    def __init__(self, module: t.Any, tree: ast.Module) -> None:
        self.module = module
        self.found: list[tuple[int, str]] = []
        self.names: frozenset[str] = frozenset()  # the enclosing class's SDK names
        self.ours = own_names() | defined_names(tree)
        self.sdk_modules: dict[str, str] = {}  # a local name for an SDK module or member: its path

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        parts = (node.module or "").split(".")
        if parts[0] == "singer_sdk":
            private_module = any(is_private(part) for part in parts)
            for alias in node.names:
                if private_module or is_private(alias.name):
                    self.found.append((node.lineno, f"{'.'.join(parts[1:])}.{alias.name}"))
                self.sdk_modules[alias.asname or alias.name] = ".".join([*parts[1:], alias.name])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "singer_sdk" and any(is_private(part) for part in parts):
                self.found.append((node.lineno, ".".join(parts[1:])))
            if parts[0] == "singer_sdk":  # `import singer_sdk.x` binds singer_sdk itself
                self.sdk_modules[alias.asname or "singer_sdk"] = ".".join(parts[1:] if alias.asname else [])

    def sdk_chain(self, node: ast.Attribute) -> str | None:
        """`helpers._util.utc_now` for an attribute chain from a name bound to the SDK."""
        attrs: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            attrs.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in self.sdk_modules:
            return None
        return ".".join(filter(None, [self.sdk_modules[value.id], *reversed(attrs)]))

    def is_sdk_name(self, name: str, own: bool) -> bool:
        """On self/cls/super(): the enclosing class's SDK names; else any `_` name not ours."""
        if own:
            return name in self.names
        return name in all_sdk_names() or name not in self.ours

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
        chain = self.sdk_chain(node)
        if chain is not None:  # names all the way down: nothing else to visit
            if through_private(chain):
                self.found.append((node.lineno, chain))
            return
        private = is_private(node.attr) and self.is_sdk_name(node.attr, is_own(node))
        if private or node.attr in all_private_typed_members():
            self.found.append((node.lineno, node.attr))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """getattr(x, "_name") and the like, and importlib.import_module("singer_sdk._x")."""
        name = text(node.args[1]) if len(node.args) > 1 else None
        if getattr(node.func, "id", "") in REFLECTION and name and is_private(name):
            own = isinstance(node.args[0], ast.Name) and node.args[0].id in RECEIVERS
            if name in all_sdk_names() or self.is_sdk_name(name, own):
                self.found.append((node.lineno, name))
        function = getattr(node.func, "attr", getattr(node.func, "id", ""))
        module = sdk_path(text(node.args[0]) or "") if node.args else None
        if function in ("import_module", "__import__") and module and through_private(module):
            self.found.append((node.lineno, module))
        self.generic_visit(node)


def sdk_internals(source: str, module: t.Any) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    finder = Finder(module, tree)
    finder.visit(tree)
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


def test_the_check_finds_uses_through_other_objects_and_modules() -> None:
    """A `_` name reached on an object that is not one of our classes' own (an SDK object
    that is no base class of ours, like the state manager) is the SDK's unless tap_callcdr
    defines it; and no attribute chain may pass through a `_` module of singer_sdk."""
    source = textwrap.dedent(
        '''
        import importlib
        import singer_sdk
        import singer_sdk.helpers as helpers
        from singer_sdk import helpers as sdk_helpers

        class Plain:
            def run(self, stream):
                stream.state_manager._check_sorted = False
                stamp = singer_sdk.helpers._util.utc_now()
                load = helpers._util.load_json
                is_boolean = sdk_helpers._typing.is_boolean_type
                util = importlib.import_module("singer_sdk.helpers._util")
                setattr(stream.state_manager, "_check_sorted", True)
                # tap_callcdr's own names (CDRStream's accounts), and this class's own: fine
                return stream._opened, self._anything, helpers.types, stamp, load, is_boolean, util
        '''
    )
    module = type("Module", (), {"Plain": type("Plain", (), {})})
    found = [what for _, what in sdk_internals(source, module)]
    assert found == [
        "_check_sorted",
        "state_manager",  # (a part of the SDK with a private API: the next test)
        "helpers._util.utc_now",
        "helpers._util.load_json",
        "helpers._typing.is_boolean_type",
        "helpers._util",
        "_check_sorted",
        "state_manager",
    ]


def test_the_check_finds_sdk_objects_of_private_types() -> None:
    """The stream's `state_manager` is public, but what it returns is a class of the SDK's
    private `streams._state`: its bookkeeping (`is_flushed`, `finalize_state`) is internal."""
    assert {"state_manager", "state_writer"} <= all_private_typed_members()
    source = textwrap.dedent(
        """
        class Plain:
            def run(self, stream):
                stream.state_manager.is_flushed = False
                self.state_manager.finalize_state({})
                return stream.state, stream.stream_state  # public, of public types: fine
        """
    )
    module = type("Module", (), {"Plain": type("Plain", (), {})})
    assert [what for _, what in sdk_internals(source, module)] == ["state_manager", "state_manager"]


def test_the_tap_and_its_streams_meet_through_declared_hooks() -> None:
    """A stream hands its failure to the tap's `stream_failed`, declared on the tap's SDK mixin
    with the SDK's behaviour (the failure is raised); the tap reads each stream's accounts that
    failed from its public `failed_accounts`. Neither is looked up by name."""
    from tap_callcdr.core.errors import VendorError
    from tap_callcdr.fastpath.sdk import SDKTap
    from tap_callcdr.tap import TapCallCDR, streams_go_on

    account = {"name": "hq", "api_url": "http://127.0.0.1:9/", "token": "t"}
    tap = TapCallCDR(config={"start_date": "2026-01-01T00:00:00Z", "generic_accounts": [account]})
    stream = tap.streams["generic_cdr"]
    error = VendorError("generic_cdr account 'hq': down")
    assert SDKTap.stream_failed(tap, stream, error) is False
    assert stream.failed_accounts == {}  # before any sync
    assert not stream.sync_failed(error)  # in-process: raised, as by the SDK
    with pytest.raises(VendorError), streams_go_on():  # the one failure, as it is
        assert stream.sync_failed(error)  # the run goes on, and names it at the end
