"""End-to-end into Snowflake: `meltano run tap-callcdr target-snowflake` with every vendor.

No Snowflake account is reachable here, so the REAL target-snowflake (meltanolabs, the pip_url of
meltano.yml's `target-snowflake`) writes into fakesnow, Snowflake SQL on a DuckDB file, through
tests/snowflake_bridge/ (its docstring names everything it replaces: the stage I/O and three
limits of fakesnow; the DDL, type mapping, key properties and MERGE stay the target's). The test
plugin `target-snowflake-fakesnow` inherits from the project's `target-snowflake` and exists only
in a copy of meltano.yml this test writes, with the repository's `.meltano` (so the installed tap
is reused); users never see it.

The two runs and the ground truth are test_e2e_meltano.py's (tests/e2e_truth.py): every record
once by primary key, every column the vendor's value (instants as UTC in TIMESTAMP_NTZ, money
digit for digit), new calls and a second run adding exactly those: it looks back to the start
date, so every record is sent again and must be merged onto its row. What target-snowflake
changes: upper-cased table and column names (`baseCost` is BASECOST), integers as NUMBER(38,0),
Yeastar's `extra` as VARIANT (queried here with `extra:"name"`), and money: FLOAT, unless the
tap's `use_singer_decimal` sends it as x-singer.decimal (as here): then NUMBER(38,18).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import itnio_helpers
import pytest
import yaml
import yeastar_helpers
from e2e_truth import (
    Key,
    Landing,
    Rows,
    as_utc,
    assert_calls_join_their_rows,
    assert_landed_exactly,
    check_first_run,
    check_second_run,
    landed_twice,
)
from vendors import STREAMS

pytestmark = pytest.mark.e2e

BRIDGE = Path(__file__).resolve().parent / "snowflake_bridge"
PLUGIN = "target-snowflake-fakesnow"
FAKESNOW = "fakesnow==0.12.1"  # what the bridge was written against (with duckdb 2.0.1)
# The database must not be named like the schema (meltano.yml's default_target_schema,
# CALLCDR): fakesnow's DuckDB finds `CALLCDR.<table>` ambiguous then.
DATABASE = "WAREHOUSE"
Statements = Callable[[list[str]], list[dict[str, Any]]]
# Yeastar's newer-firmware CSV columns, by name, out of the VARIANT `extra`
EXTRA_QUERY = "select callid, timestart, {} from {} where account = 'pbx1'".format(
    ", ".join(f'extra:"{name}"::varchar' for name in yeastar_helpers.EXTRA_COLUMNS),
    yeastar_helpers.STREAM.upper(),
)


def bridged_project(root: Path, into: Path, db_path: Path) -> tuple[Path, str]:
    """A copy of the project's meltano.yml plus the test plugin (the real target's pip_url and
    fakesnow, run through the bridge), sharing the project's installed plugins; and the schema
    target-snowflake loads into (its meltano.yml default_target_schema)."""
    project = yaml.safe_load((root / "meltano.yml").read_text())
    loaders = project["plugins"]["loaders"]
    real = next(plugin for plugin in loaders if plugin["name"] == "target-snowflake")
    loaders.append(
        {
            "name": PLUGIN,
            "inherit_from": "target-snowflake",
            "pip_url": f"{real['pip_url']} {FAKESNOW}",
            "executable": str(BRIDGE / "target-snowflake-fakesnow"),
            "env": {"FAKESNOW_DB_PATH": str(db_path)},
        }
    )
    into.mkdir()
    db_path.mkdir()
    (into / "meltano.yml").write_text(yaml.safe_dump(project, allow_unicode=True, sort_keys=False))
    (into / ".meltano").symlink_to(root / ".meltano", target_is_directory=True)
    return into, real["config"]["default_target_schema"]


def run_sql(python: Path, db_path: Path, schema: str) -> Statements:
    """Snowflake SQL on the landed database (through fakesnow, in the test plugin's venv)."""

    def run(statements: list[str]) -> list[dict[str, Any]]:
        proc = subprocess.run(
            [str(python), str(BRIDGE / "query.py"), str(db_path), DATABASE, schema],
            input=json.dumps(statements),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, f"query.py failed: {proc.stderr[-4000:]}"
        return [json.loads(line) for line in proc.stdout.splitlines()]

    return run


# ------------------------------------------------------------ how target-snowflake stores values


def columns_query(schema: str) -> str:
    return (
        "select table_name, column_name, data_type, numeric_precision, numeric_scale "
        f"from information_schema.columns where table_schema = '{schema}'"
    )


def column_types(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Table (upper-cased stream name) -> column -> its Snowflake type, e.g. NUMBER(38,6)."""
    types: dict[str, dict[str, str]] = {}
    for table, column, kind, precision, scale in result["rows"]:
        if kind == "NUMBER":
            kind = f"NUMBER({precision},{scale})"
        types.setdefault(table, {})[column] = kind
    return types


def field_names(stream: str, landing: Landing) -> dict[str, str]:
    """Snowflake's upper-cased column -> the stream's field (`baseCost` lands as BASECOST)."""
    _, landed_stream = STREAMS[stream]
    fields = {c for want in landing.truth2[stream].values() for c in want}
    fields |= set(landed_stream.made_by_tap) | set(landed_stream.key)
    return {field.upper(): field for field in fields}


def decoded(kind: str, value: Any) -> Any:
    """A value query.py printed, as the connector returns it (VARIANT: its JSON, parsed)."""
    if kind == "VARIANT":
        return None if value is None else json.loads(value)
    if isinstance(value, dict) and "timestamp" in value:
        return datetime.fromisoformat(value["timestamp"])
    if isinstance(value, dict) and "decimal" in value:
        return Decimal(value["decimal"])
    return value


def stored(data_type: str, value: Any) -> Any:
    """A vendor value as target-snowflake stores it in a column of `data_type`: integers in
    NUMBER(38,0); money in NUMBER(p,s) (exact: Decimal, digit for digit) or FLOAT; text as
    sent; instants (UTC already) in TIMESTAMP_NTZ, `extra` in VARIANT (dict or None); an empty or
    absent number is NULL."""
    if data_type.startswith(("NUMBER", "FLOAT")) and value in (None, ""):
        return None
    if data_type.startswith("NUMBER("):
        return int(value) if data_type.endswith(",0)") else Decimal(str(value))
    if data_type == "FLOAT":
        return float(value)
    if data_type == "TEXT":
        return None if value is None else str(value)
    return value


def landed(value: Any) -> Any:
    """A fetched value in the form `stored` gives (TIMESTAMP_NTZ holds UTC)."""
    return as_utc(value) if isinstance(value, datetime) else value


def landed_exactly(
    stream: str, rows: Rows, expected: dict[Key, dict[str, Any]], types: dict[str, str]
) -> None:
    assert_landed_exactly(stream, rows, expected, types, stored=stored, landed=landed)


# ------------------------------------------------------------------------ the two meltano runs


@dataclass
class Snowflake:
    landing: Landing  # rows and types under the streams' field names
    tables: dict[str, dict[str, str]]  # as Snowflake has them: TABLE -> COLUMN -> type
    extra: list[list[Any]]  # EXTRA_QUERY's rows after the second run
    calls: list[dict[str, Any]]  # the CALLS table after the second run, columns lower-cased


def in_field_names(landing: Landing, tables: dict[str, dict[str, str]]) -> None:
    """Rows and types under the streams' field names (`_SDC_*` as `_sdc_*`)."""
    for stream in STREAMS:
        names = field_names(stream, landing)

        def rename(column: str, names: dict[str, str] = names) -> str:
            return names.get(column, column.lower())

        landing.types[stream] = {rename(c): kind for c, kind in tables[stream.upper()].items()}
        for rows in (landing.rows1, landing.rows2):
            rows[stream] = [{rename(c): v for c, v in row.items()} for row in rows[stream]]


@pytest.fixture(scope="module")
def snowflake(
    meltano: Any, simulator_launcher: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Snowflake]:
    meltano.install("tap-callcdr")
    work = tmp_path_factory.mktemp("e2e-snowflake")
    db_path = work / "fakesnow"
    project, schema = bridged_project(meltano.root, work / "project", db_path)
    prefix = PLUGIN.upper().replace("-", "_")
    target = {  # fakesnow takes any credentials; the database must exist (fakesnow makes it)
        f"{prefix}_ACCOUNT": "fakesnow",
        f"{prefix}_USER": "fake",
        f"{prefix}_PASSWORD": "snow",
        f"{prefix}_DATABASE": DATABASE,
    }

    def env(**extra: str) -> dict[str, str]:
        return meltano.env(work, MELTANO_PROJECT_ROOT=str(project), **target, **extra)

    meltano.check("install", PLUGIN, env=env(), timeout=1200)
    python = meltano.root / ".meltano" / "loaders" / PLUGIN / "venv" / "bin" / "python"
    sql = run_sql(python, db_path, schema)
    tables: dict[str, dict[str, str]] = {}

    extra: list[list[Any]] = []
    calls: list[dict[str, Any]] = []

    def fetch() -> dict[str, Rows]:  # one query.py: its start (fakesnow's import) takes seconds
        columns, extra_rows, *results = sql(
            [columns_query(schema), EXTRA_QUERY]
            + [f"select * from {DATABASE}.{schema}.{stream.upper()}" for stream in STREAMS]
            + [f"select * from {DATABASE}.{schema}.{CALLS.upper()}"]
        )
        *results, called = results
        tables.update(column_types(columns))
        extra[:] = extra_rows["rows"]
        kinds = tables[CALLS.upper()]
        calls[:] = [
            {c.lower(): decoded(kinds[c], v) for c, v in zip(called["columns"], row, strict=True)}
            for row in called["rows"]
        ]
        out = {}
        for stream, result in zip(STREAMS, results, strict=True):
            kinds = tables[stream.upper()]
            out[stream] = [
                {c: decoded(kinds[c], v) for c, v in zip(result["columns"], row, strict=True)}
                for row in result["rows"]
            ]
        return out

    def run(tap: dict[str, str]) -> None:
        # money as x-singer.decimal: NUMBER(38,18), not FLOAT (docs/snowflake.md)
        meltano.check("run", "tap-callcdr", PLUGIN, env=env(**tap, TAP_CALLCDR_USE_SINGER_DECIMAL="true"))

    with landed_twice(simulator_launcher, work, schema, run, fetch, reread=True) as landing:
        in_field_names(landing, tables)
        yield Snowflake(landing, tables, extra, calls)


# ------------------------------------------------------------------ tap -> target-snowflake

CALLS = "calls"  # the unified stream (docs/calls.md): Meltano selects it with the others

ALL_STREAMS = pytest.mark.parametrize("stream", list(STREAMS))


@ALL_STREAMS
def test_first_run_lands_every_record_once_in_utc(snowflake: Snowflake, stream: str) -> None:
    check_first_run(snowflake.landing, stream, landed_exactly)


@ALL_STREAMS
def test_second_run_lands_exactly_the_new_calls(snowflake: Snowflake, stream: str) -> None:
    check_second_run(snowflake.landing, stream, landed_exactly)


def test_names_are_upper_case_and_instants_timestamp_ntz(snowflake: Snowflake) -> None:
    """What a user meets in Snowflake: upper-cased tables and columns, TIMESTAMP_NTZ (UTC)."""
    assert set(snowflake.tables) == {stream.upper() for stream in [*STREAMS, CALLS]}
    for stream, (_, landed_stream) in STREAMS.items():
        columns = snowflake.tables[stream.upper()]
        assert all(column == column.upper() for column in columns), columns
        for column in landed_stream.time_columns:
            assert columns[column.upper()] == "TIMESTAMP_NTZ", (stream, column)


@pytest.mark.parametrize("stream", list(itnio_helpers.STREAMS))
def test_itnio_money_is_exact_number(snowflake: Snowflake, stream: str) -> None:
    """With the tap's use_singer_decimal, money lands in NUMBER(38,18) columns, every digit the
    vendor sent (compared as Decimals above, too); without it target-snowflake makes FLOAT."""
    types = snowflake.landing.types[stream]
    money = STREAMS[stream][1].money
    assert money
    for column in money:
        assert types[column] == "NUMBER(38,18)", f"{stream}.{column} is {types[column]}"
    rows = snowflake.landing.rows2[stream]
    assert all(isinstance(r["rate"], Decimal) for r in rows)
    # rates have four decimals ("0.0085"): a float would not hold them exactly
    assert any(r["rate"].normalize().as_tuple().exponent == -4 for r in rows)
    assert any(r["cost"] != 0 for r in rows)


def test_yeastar_extra_is_queryable_variant(snowflake: Snowflake) -> None:
    """The newer-firmware CSV columns land in `extra` (VARIANT), queried by name in Snowflake
    SQL (`extra:"name"::varchar`)."""
    assert snowflake.tables[yeastar_helpers.STREAM.upper()]["EXTRA"] == "VARIANT"
    first, second = yeastar_helpers.EXTRA_COLUMNS
    expected = {
        key[1:]: want["extra"]
        for key, want in snowflake.landing.truth2[yeastar_helpers.STREAM].items()
        if key[0] == "pbx1"
    }
    assert len(snowflake.extra) == len(expected)
    for callid, start, got_first, got_second in snowflake.extra:
        want = expected[(callid, as_utc(decoded("", start)).isoformat())]
        assert want is not None
        assert (got_first, got_second) == (want[first], want[second])


def test_calls_land_one_row_per_vendor_row_in_snowflake(snowflake: Snowflake) -> None:
    """The unified `calls` lands in Snowflake too: one row per vendor row, joined back by
    source_stream and source_key at the vendor row's instant; TIMESTAMP_NTZ instants, and with
    use_singer_decimal money in NUMBER(38,18)."""
    assert snowflake.calls, "no calls landed: proves nothing"
    assert_calls_join_their_rows(snowflake.landing.rows2, snowflake.calls)
    columns = snowflake.tables[CALLS.upper()]
    assert columns["STARTED_AT"] == columns["ENDED_AT"] == "TIMESTAMP_NTZ"
    assert columns["COST"] == "NUMBER(38,18)"
    assert any(isinstance(c["cost"], Decimal) and c["cost"] != 0 for c in snowflake.calls)
