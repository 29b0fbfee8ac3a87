#!/usr/bin/env python3
"""Print what the demo landed in DuckDB: per stream its rows, start-time span, accounts, breakdown.

    scripts/show_landed.py [--db output/warehouse.duckdb] [--schema callcdr] [--before N]
                           [--now 2026-11-30T07:00:00+00:00]
    scripts/show_landed.py --count      # just the total row count (0 if nothing landed yet)

For every table: the row count, the first and last call start (UTC), rows per account, a
per-direction or per-status breakdown where the stream has one, and how many primary keys
occur more than once (always 0: loaders upsert). `--before N` (the count taken before the
run) adds "rows landed this run". Once the unified `calls` stream has landed, the demo
query (CALLS_BY_VENDOR_AND_STATUS) follows: its calls per vendor and status over the day
before `--now` (default: the current time; scripts/demo passes its simulator's clock). The
file is opened read-only: it never changes what a loader wrote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tap_callcdr.core.calls import STATUSES

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StreamView:
    """What to show of one stream's table (column names as the tap emits them)."""

    title: str
    start: str  # the call start column (the replication key), UTC
    key: tuple[str, ...]  # primary key
    breakdowns: tuple[tuple[str, str, dict[str, str]], ...] = ()  # (column, label, value names)


TENCENT_END_STATUS = {
    "0": "unknown",
    "1": "normal",
    "2": "caller unanswered",
    "3": "callee unanswered",
    "4": "caller unreachable",
    "5": "callee unreachable",
}
STREAMS = {
    "generic_cdr": StreamView(
        "generic call-center API",
        "starttime",
        ("account", "id"),
        (("direction", "direction", {}),),
    ),
    "tencent_cdr": StreamView(
        "Tencent callback",
        "startSrcCallTime",
        ("account", "callId"),
        (("callEndStatus", "end status", TENCENT_END_STATUS),),
    ),
    "itnio_sip_cdr": StreamView(
        "ITNIO SIP phones",
        "callTime",
        ("account", "voiceId"),
        (("terminationReason", "termination", {}),),
    ),
    "itnio_group_cdr": StreamView(
        "ITNIO group calls",
        "callTime",
        ("account", "voiceId"),
        (("terminationReason", "termination", {}),),
    ),
    "yeastar_cdr": StreamView(
        "Yeastar PBX",
        "timestart",
        ("account", "row_id"),
        (("type", "direction", {}), ("status", "status", {})),
    ),
    "calls": StreamView(
        "every vendor's calls, one shape: docs/calls.md",
        "started_at",
        ("vendor", "account", "call_id"),
        (("vendor", "vendor", {}), ("direction", "direction", {}), ("status", "status", {})),
    ),
}
CALLS = "calls"
# The demo query: the analyst's first question of the unified table. `started_at` is UTC (a
# TIMESTAMP in target-duckdb), and so are the bounds.
CALLS_BY_VENDOR_AND_STATUS = (
    "SELECT vendor, status, count(*) AS calls FROM {table} "
    "WHERE started_at > TIMESTAMP '{since}' AND started_at <= TIMESTAMP '{now}' "
    "GROUP BY vendor, status ORDER BY vendor, status"
)


def tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = ? ORDER BY table_name",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    """Lower-cased name -> the column's real name (loaders may fold the tap's camelCase)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0].lower(): r[0] for r in rows}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """catalog.schema.table: a file named like its schema would make `schema.table` ambiguous."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    return ".".join(quote(n) for n in (catalog, schema, table))


def total_rows(db: Path, schema: str) -> int:
    if not db.exists():
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sum(
            con.execute(f"SELECT count(*) FROM {qualified(con, schema, t)}").fetchone()[0]
            for t in tables(con, schema)
        )
    finally:
        con.close()


def grouped(
    con: duckdb.DuckDBPyConnection, table: str, column: str, names: dict[str, str] | None = None
) -> str:
    """`value count` pairs, largest first."""
    rows = con.execute(
        f"SELECT coalesce(CAST({quote(column)} AS VARCHAR), '(null)') AS v, count(*) AS n "
        f"FROM {table} GROUP BY v ORDER BY n DESC, v"
    ).fetchall()
    names = names or {}
    return ", ".join(
        f"{names[value]} ({value})={count}" if value in names else f"{value or '(empty)'}={count}"
        for value, count in rows
    )


def show_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> int:
    table = qualified(con, schema, name)
    cols = columns(con, schema, name)
    view = STREAMS.get(name)
    count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    print(f"\n  {name}{f' ({view.title})' if view else ''}: {count} rows")
    if not count:
        return count
    start = cols.get(view.start.lower()) if view else cols.get("starttime")
    if start:
        low, high = con.execute(
            f"SELECT min({quote(start)}), max({quote(start)}) FROM {table}"
        ).fetchone()
        print(f"    {view.start if view else start} (UTC): {low} .. {high}")
    if "account" in cols:
        print(f"    per account: {grouped(con, table, cols['account'])}")
    for column, label, names in view.breakdowns if view else ():
        if column.lower() in cols:
            print(f"    per {label}: {grouped(con, table, cols[column.lower()], names)}")
    key_names = view.key if view else ("account", "id")
    key = [cols[c.lower()] for c in key_names if c.lower() in cols]
    if len(key) == len(key_names):
        listed = ", ".join(quote(c) for c in key)
        dupes = con.execute(
            f"SELECT count(*) FROM (SELECT {listed} FROM {table} GROUP BY {listed} "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
        print(f"    primary key ({', '.join(key_names)}) repeated: {dupes}")
    return count


def show_calls_last_day(con: duckdb.DuckDBPyConnection, schema: str, now: dt.datetime) -> None:
    """The demo query's answer: one line per vendor, its calls per status over the last day."""
    end = now.astimezone(dt.UTC).replace(tzinfo=None)
    bounds = {"since": end - dt.timedelta(days=1), "now": end}
    counts: dict[str, dict[str, int]] = {}
    query = CALLS_BY_VENDOR_AND_STATUS.format(table=qualified(con, schema, CALLS), **bounds)
    for vendor, status, calls in con.execute(query).fetchall():
        counts.setdefault(vendor, {})[status] = calls
    print("\n  calls per vendor and status, started in the last day (UTC):")
    print(f"    {CALLS_BY_VENDOR_AND_STATUS.format(table=f'{schema}.{CALLS}', **bounds)}")
    if not counts:
        print("    none")
    statuses = [*STATUSES, *sorted({s for row in counts.values() for s in row} - set(STATUSES))]
    width = max(map(len, counts), default=0)
    for vendor, row in sorted(counts.items()):
        cells = "  ".join(f"{status}={row[status]}" for status in statuses if status in row)
        print(f"    {vendor:<{width}}  total={sum(row.values())}  {cells}")


def show(db: Path, schema: str, before: int | None, now: dt.datetime | None = None) -> int:
    if not db.exists():
        print(f"nothing landed: {db} does not exist")
        return 1
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = tables(con, schema)
        if not names:
            print(f"nothing landed: no tables in schema {schema!r} of {db}")
            return 1
        print(f"Landed in {db.relative_to(ROOT) if db.is_relative_to(ROOT) else db}, "
              f"schema {schema}:")
        total = sum(show_table(con, schema, name) for name in names)
        missing = sorted(set(STREAMS) - set(names))
        if missing:
            print(f"\n  no table yet for: {', '.join(missing)}")
        if CALLS in names:
            show_calls_last_day(con, schema, now or dt.datetime.now(dt.UTC))
    finally:
        con.close()
    if before is not None:
        new = total - before
        note = "  (a rerun: everything was already there, reruns upsert)" if new == 0 else ""
        print(f"\nRows landed this run: {new} new (before: {before}, now: {total}){note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "output" / "warehouse.duckdb")
    parser.add_argument("--schema", default="callcdr")
    parser.add_argument("--before", type=int, help="total row count before this run")
    parser.add_argument("--count", action="store_true", help="print the total row count only")
    parser.add_argument("--now", type=instant, help="end of the demo query's last day (ISO 8601)")
    args = parser.parse_args(argv)
    db = args.db.resolve()
    if args.count:
        print(total_rows(db, args.schema))
        return 0
    return show(db, args.schema, args.before, args.now)


def instant(text: str) -> dt.datetime:
    """An ISO 8601 instant; without an offset, UTC."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


if __name__ == "__main__":
    sys.exit(main())
