"""The package layout holds (tap_callcdr/vendors/__init__.py says what it is): vendors are
parallel packages of one shape, none importing another, over a core and fastpath that import
no vendor and not the tap. Read from every file's syntax tree, so a new file is checked too."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_callcdr.vendors import REQUIRED_MODULES

PACKAGE = Path(__file__).resolve().parent.parent / "tap_callcdr"
VENDORS = PACKAGE / "vendors"
VENDOR_NAMES = sorted(p.parent.name for p in VENDORS.glob("*/__init__.py"))
LIGHT = ("", ".columns", ".records")  # what a row worker may load of a vendor: no SDK, no requests


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, anywhere in it (functions, TYPE_CHECKING),
    relative ones resolved; `from a import b` gives `a.b` (b may be a module), and
    `import_module("a.b")` with a literal name counts too."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__"):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def vendor_of(name: str) -> str | None:
    """The vendor package a dotted name is in, if any."""
    parts = name.split(".")
    if parts[:2] == ["tap_callcdr", "vendors"] and len(parts) > 2 and parts[2] in VENDOR_NAMES:
        return parts[2]
    return None


def where(path: Path, line: int, name: str) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"


def test_there_are_vendor_packages_to_check() -> None:
    assert {"generic", "itnio", "tencent", "yeastar"} <= set(VENDOR_NAMES)


def test_no_vendor_imports_another_vendor() -> None:
    """Nor does the vendors package itself import one (each is loaded on its own)."""
    wrong = [
        where(path, line, name)
        for path in sorted(VENDORS.rglob("*.py"))
        for line, name in imports(path)
        if vendor_of(name) not in (None, vendor_of(module_name(path)))
    ]
    assert wrong == []


def imports_reaching(package: str, *above: str) -> list[str]:
    """The imports in `package` of a module among `above` or inside one of them."""
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    return [
        where(path, line, name)
        for path in files
        for line, name in imports(path)
        if any(name == module or name.startswith(f"{module}.") for module in above)
    ]


@pytest.mark.parametrize("package", ["core", "fastpath"])
def test_core_and_fastpath_import_no_vendor_nor_the_tap(package: str) -> None:
    assert imports_reaching(package, "tap_callcdr.vendors", "tap_callcdr.tap") == []


@pytest.mark.parametrize(
    ("package", "above"),
    [("vendors", "tap_callcdr.tap"), ("fastpath", "tap_callcdr.core")],
)
def test_imports_point_one_way(package: str, above: str) -> None:
    """tap -> vendors -> core, fastpath; core -> fastpath: a vendor is registered by the tap,
    never the other way, and the speed machinery knows the core only by the Protocols it
    declares (TYPE_CHECKING imports included: they are arrows all the same)."""
    assert imports_reaching(package, above) == []


ROW_WORKER_CONTRACT = ("FILE_AT_NEWLINES", "ONE_PAGE")  # a vendor's row_cut; the rest is CDRStream's


def test_vendors_reach_row_workers_only_through_the_stream_contract() -> None:
    """A vendor names its task and its cut, and asks CDRStream (converted_by_workers,
    spool_directory): it never holds the RowWorkers, so their design stays fastpath's."""
    wrong = []
    for path in sorted(VENDORS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        wrong += [
            f"{path.relative_to(PACKAGE.parent)}:{node.lineno} reads .row_workers"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "row_workers"
        ]
        wrong += [
            f"{path.relative_to(PACKAGE.parent)}:{node.lineno} uses rowworkers.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "rowworkers" and node.attr not in ROW_WORKER_CONTRACT
        ]  # fmt: skip
        wrong += [
            where(path, line, name)
            for line, name in imports(path)
            if name.startswith("tap_callcdr.fastpath.rowworkers.")
            and name.rpartition(".")[2] not in ROW_WORKER_CONTRACT
        ]
    assert wrong == []


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_every_vendor_package_has_the_canonical_modules(vendor: str) -> None:
    present = {path.stem for path in (VENDORS / vendor).glob("*.py")}
    assert [name for name in REQUIRED_MODULES if name not in present] == []


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_every_envelope_check_takes_the_parsed_body(vendor: str) -> None:
    """One role: `payload` parses an answer once, `check` judges the body it gave."""
    path = VENDORS / vendor / "envelope.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    checks = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"]
    assert [node.args.args[0].arg for node in checks] == ["body"]


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_columns_import_nothing(vendor: str) -> None:
    """columns.py is data: schema.py, records.py and a row worker read it for free."""
    path = VENDORS / vendor / "columns.py"
    assert [where(path, line, name) for line, name in imports(path) if name != "__future__.annotations"] == []


@pytest.mark.parametrize("module", [f"{v}{light}" for v in VENDOR_NAMES for light in LIGHT])
def test_a_vendor_package_and_its_record_modules_load_no_sdk(module: str) -> None:
    """VENDOR is loaded on first use, so importing a vendor package (as a row worker does, for
    its records) loads neither the SDK nor requests."""
    code = (
        "import sys\n"
        f"import tap_callcdr.vendors.{module}\n"
        "print(sorted(m for m in ('singer_sdk', 'requests') if m in sys.modules))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"


def test_vendor_is_still_there_on_first_use() -> None:
    """Every package's VENDOR, loaded on first use, is the one tap.py registers: a new vendor
    is checked without editing this file, and one left out of tap.VENDORS is named."""
    from tap_callcdr.tap import VENDORS as REGISTERED

    packages = [importlib.import_module(f"tap_callcdr.vendors.{name}") for name in VENDOR_NAMES]
    assert [v.VENDOR.key for v in packages] == VENDOR_NAMES
    assert sorted(vendor.key for vendor in REGISTERED) == VENDOR_NAMES
