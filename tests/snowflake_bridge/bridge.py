"""TEST ONLY: the real target-snowflake, writing into fakesnow (Snowflake SQL on a DuckDB file).

No Snowflake account is reachable in tests, so tests/test_e2e_snowflake.py runs the real
`meltanolabs-target-snowflake` (its CLI, its SQLSink, its connector) through this module, in a
test-only Meltano plugin that inherits from the project's `target-snowflake` (it is written into
a copy of meltano.yml by the test; users never see it). fakesnow (`fakesnow.patch`) answers the
target's `snowflake.connector.connect` with a DuckDB database file per Snowflake database under
``$FAKESNOW_DB_PATH``. What this module replaces, because fakesnow 0.12.1 lacks it, and nothing
else:

1. Stage I/O. fakesnow refuses the target's ``PUT ... '@~/target-snowflake/<id>'`` (the quoted
   user stage), cannot parse ``REMOVE``, and its binder fails the target's ``select $1:col::TYPE
   ... from '@~/...'``. So ``put_batches_to_stage`` only remembers the target's gzip JSONL batch
   files, ``remove_staged_files`` forgets them, and ``merge_from_stage`` / ``copy_from_stage``
   load them into a side table (the staged record in a VARIANT column for ``$1``, and its
   position in the files for ``SEQ8()``, which fakesnow makes a window function the target's
   ``QUALIFY ... ORDER BY`` cannot hold). The target's OWN select over the stage (its casts and
   its dedup on the key properties, from ``_get_merge_from_stage_statement`` /
   ``_get_copy_statement``) is run over that side table into a second one, since DuckDB binds
   the QUALIFY's column aliases to the MERGE's target when it stays a subquery of the join; then
   the target's OWN MERGE runs with that table as its source. COPY INTO <table> (<cols>) FROM
   (select ...) runs as the INSERT it means.
2. ``DROP FILE FORMAT``, which fakesnow does not implement, is a no-op (fakesnow's
   ``nop_regexes``); ``CREATE FILE FORMAT`` is fakesnow's own.
3. One connection at a time: fakesnow's DuckDB connection is not shared across threads the way
   the SDK's parallel drain uses it, so the target drains its sinks one at a time
   (``max_parallelism`` 1).
4. A current schema: fakesnow's MERGE needs one, and the target's URL names only the database,
   so every connection is opened with ``schema=`` the target's ``default_target_schema``.
5. Database and schema names: in DuckDB a database (catalog) named like a schema is ambiguous, so
   the test names them differently (this module stops, in one line, when they are the same).

Everything else is the target's own: its DDL (CREATE SCHEMA/TABLE, ALTER), its JSON Schema to
Snowflake type mapping (NUMBER, FLOAT, TIMESTAMP_NTZ, VARIANT, VARCHAR), its upper-cased names,
its key properties and MERGE.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlparse

import fakesnow
import snowflake.connector
from target_snowflake.connector import SnowflakeConnector
from target_snowflake.target import TargetSnowflake

STAGE_REF = "'@~/target-snowflake/{sync_id}'"
STAGED_COLUMN = "STAGED_RECORD"  # the side table's VARIANT column: a staged record ($1)
STAGED_SEQ = "STAGED_SEQ"  # its position in the staged files (what SEQ8() numbers)
_staged: dict[str, list[str]] = {}  # sync_id -> the batch files the target PUT


def put_batches_to_stage(self: SnowflakeConnector, sync_id: str, files: t.Sequence[str]) -> None:
    _staged[sync_id] = [urlparse(uri).path for uri in files]


def remove_staged_files(self: SnowflakeConnector, sync_id: str) -> None:
    _staged.pop(sync_id, None)


def merge_from_stage(
    self: SnowflakeConnector,
    full_table_name: t.Any,
    schema: dict,
    sync_id: str,
    file_format: str,
    key_properties: t.Sequence[str],
) -> int:
    clause, _ = self._get_merge_from_stage_statement(
        full_table_name=full_table_name,
        schema=schema,
        sync_id=sync_id,
        file_format=file_format,
        key_properties=key_properties,
    )
    head, source, tail = _split_staged_select(clause.text, sync_id)
    # merge into T d using (<select ... from stage>) s on ...: `using <source> s on ...`
    return _run_staged(self, source, sync_id, lambda table: f"{head}{table}{tail}")


def copy_from_stage(
    self: SnowflakeConnector, full_table_name: t.Any, schema: dict, sync_id: str, file_format: str
) -> int:
    clause, _ = self._get_copy_statement(
        full_table_name=full_table_name, schema=schema, sync_id=sync_id, file_format=file_format
    )
    head, source, _ = _split_staged_select(clause.text, sync_id)
    # copy into T (cols) from (<select>)file_format = (...): the INSERT it means
    insert = head.replace("copy into", "insert into", 1).removesuffix(" from ")
    return _run_staged(self, source, sync_id, lambda table: f"{insert} select * from {table}")


def _split_staged_select(statement: str, sync_id: str) -> tuple[str, str, str]:
    """(before, the parenthesised select that reads the stage, after) of a target statement."""
    reads = statement.index(STAGE_REF.format(sync_id=sync_id))
    start = statement.rindex("(select ", 0, reads)
    depth, quote = 0, ""
    for end in range(start, len(statement)):
        char = statement[end]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return statement[:start], statement[start + 1 : end], statement[end + 1 :]
    raise AssertionError(f"bridge: no end to the staged select in {statement}")


def _run_staged(
    self: SnowflakeConnector, select: str, sync_id: str, statement: t.Callable[[str], str]
) -> int:
    """Load the staged files into a side table, materialise the target's own select over it
    (DuckDB binds its QUALIFY's aliases to the MERGE's other side when it stays a subquery of
    the join), then run the target's statement on that. Returns the rows it merged/copied."""
    suffix = uuid.uuid4().hex
    side, source = f"_bridge_stage_{suffix}", f"_bridge_source_{suffix}"
    stage = re.escape(STAGE_REF.format(sync_id=sync_id)) + r"(\(file_format => [^)]*\))?"
    select = re.sub(stage, side, select).replace("$1:", f"{STAGED_COLUMN}:")
    select = select.replace("SEQ8()", STAGED_SEQ)
    files = ", ".join(f"'{path}'" for path in _staged[sync_id])
    with self._connect() as conn:
        duck = conn.connection.dbapi_connection._duck_conn  # fakesnow's DuckDB cursor
        duck.execute(
            f"create temp table {side} as select json as {STAGED_COLUMN}, "
            f"row_number() over () as {STAGED_SEQ} "
            f"from read_json_objects([{files}], format='newline_delimited')"
        )
        try:
            with conn.begin():
                conn.exec_driver_sql(f"create temp table {source} as {select}")
                result = conn.exec_driver_sql(statement(source))
                row = result.fetchone() if result.returns_rows else None
            return sum(row) if row is not None else result.rowcount
        finally:
            duck.execute(f"drop table if exists temp.main.{side}")
            duck.execute(f"drop table if exists temp.main.{source}")


class OneConnectionTarget(TargetSnowflake):
    """target-snowflake, draining its sinks one at a time (fakesnow: one connection)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1


def target_config(argv: list[str]) -> dict[str, t.Any]:
    """The target's --config files, merged as the SDK merges them (later files win)."""
    config: dict[str, t.Any] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "--config" and value != "ENV":
            config.update(json.loads(Path(value).read_text()))
    return config


def main() -> None:
    db_path = Path(os.environ["FAKESNOW_DB_PATH"])
    config = target_config(sys.argv)
    schema = config.get("default_target_schema")
    if schema and str(config.get("database", "")).upper() == schema.upper():
        sys.exit(f"snowflake bridge: database and default_target_schema are both {schema}: ambiguous")
    SnowflakeConnector.put_batches_to_stage = put_batches_to_stage  # type: ignore[method-assign]
    SnowflakeConnector.remove_staged_files = remove_staged_files  # type: ignore[method-assign]
    SnowflakeConnector.merge_from_stage = merge_from_stage  # type: ignore[method-assign]
    SnowflakeConnector.copy_from_stage = copy_from_stage  # type: ignore[method-assign]
    with fakesnow.patch(db_path=db_path, nop_regexes=[r"^drop file format "]):
        fake_connect = snowflake.connector.connect.side_effect

        def connect(**kwargs: t.Any) -> t.Any:
            return fake_connect(**{**kwargs, "schema": schema} if schema else kwargs)

        snowflake.connector.connect.side_effect = connect
        OneConnectionTarget.cli()


if __name__ == "__main__":
    main()
