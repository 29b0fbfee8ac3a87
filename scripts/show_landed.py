#!/usr/bin/env python3
"""Print what the demo landed in DuckDB: rows per table, time span, directions, accounts.

    scripts/show_landed.py [--db output/warehouse.duckdb] [--schema callcdr] [--before N]
    scripts/show_landed.py --count      # just the total row count (0 if nothing landed yet)

`--before N` (the count taken before the run) adds "rows landed this run".
The file is opened read-only, so it never changes what a loader wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent


def tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = ? ORDER BY table_name",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


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


def grouped(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    rows = con.execute(
        f'SELECT coalesce(CAST("{column}" AS VARCHAR), \'(null)\') AS v, count(*) '
        f"FROM {table} GROUP BY v ORDER BY v"
    ).fetchall()
    return ", ".join(f"{value}={count}" for value, count in rows)


def show(db: Path, schema: str, before: int | None) -> int:
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
        total = 0
        for name in names:
            table = qualified(con, schema, name)
            cols = columns(con, schema, name)
            count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            total += count
            print(f"\n  {name}: {count} rows")
            if "starttime" in cols and count:
                low, high = con.execute(
                    f"SELECT min(starttime), max(starttime) FROM {table}"
                ).fetchone()
                print(f"    starttime (UTC): {low} .. {high}")
            if "account" in cols and {"account", "id"} <= cols:
                dupes = con.execute(
                    f"SELECT count(*) FROM (SELECT account, id FROM {table} "
                    f"GROUP BY account, id HAVING count(*) > 1)"
                ).fetchone()[0]
                print(f"    duplicate (account, id) keys: {dupes}")
            for column in ("direction", "account"):
                if column in cols and count:
                    print(f"    per {column}: {grouped(con, table, column)}")
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
    args = parser.parse_args(argv)
    db = args.db.resolve()
    if args.count:
        print(total_rows(db, args.schema))
        return 0
    return show(db, args.schema, args.before)


if __name__ == "__main__":
    sys.exit(main())
