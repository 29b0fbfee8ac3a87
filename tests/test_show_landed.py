"""scripts/show_landed.py's demo query over a landed `calls` table: calls per vendor and
status over the last day (a table of the documented schema, typed as target-duckdb lands it)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb

from tap_callcdr.core.calls import CORE_FIELDS, MAPPED_FIELDS

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "show_landed.py"
NOW = dt.datetime(2026, 11, 30, 7, 0)  # UTC
TYPES = {"started_at": "TIMESTAMP", "answered_at": "TIMESTAMP", "ended_at": "TIMESTAMP",
         "duration_seconds": "HUGEINT", "talk_seconds": "HUGEINT", "cost": "DOUBLE"}  # fmt: skip
# (vendor, status, hours before NOW): the first and last fall outside the last day
CALLS = [
    ("itnio", "answered", 25), ("itnio", "answered", 23), ("itnio", "failed", 2),
    ("itnio", "answered", 0), ("yeastar", "no_answer", 1), ("yeastar", "answered", 3),
    ("yeastar", "busy", 12), ("yeastar", "no_answer", 20), ("generic", "unknown", -1),
]  # fmt: skip


def landed(path: Path) -> Path:
    fields = (*CORE_FIELDS, *MAPPED_FIELDS)
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA callcdr")
    columns = ", ".join(f"{name} {TYPES.get(name, 'VARCHAR')}" for name in fields)
    con.execute(f"CREATE TABLE callcdr.calls ({columns})")
    for i, (vendor, status, hours) in enumerate(CALLS):
        started = NOW - dt.timedelta(hours=hours)
        row = dict.fromkeys(fields) | {"vendor": vendor, "account": "a", "call_id": str(i),
                                       "status": status, "started_at": started}  # fmt: skip
        con.execute(f"INSERT INTO callcdr.calls VALUES ({', '.join('?' * len(fields))})", list(row.values()))
    con.close()
    return path


def show(db: Path, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), *args],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return done.stdout.splitlines()


def test_calls_per_vendor_and_status_over_the_last_day(tmp_path: Path) -> None:
    lines = show(landed(tmp_path / "w.duckdb"), "--now", "2026-11-30T15:00:00+08:00")
    start = lines.index("  calls per vendor and status, started in the last day (UTC):")
    assert lines[start + 1] == (
        "    SELECT vendor, status, count(*) AS calls FROM callcdr.calls WHERE started_at > "
        "TIMESTAMP '2026-11-29 07:00:00' AND started_at <= TIMESTAMP '2026-11-30 07:00:00' "
        "GROUP BY vendor, status ORDER BY vendor, status"
    )
    assert lines[start + 2 :] == [
        "    itnio    total=3  answered=2  failed=1",
        "    yeastar  total=4  answered=1  no_answer=2  busy=1",
    ]
    assert "  calls (every vendor's calls, one shape: docs/calls.md): 9 rows" in lines
    assert "    primary key (vendor, account, call_id) repeated: 0" in lines


def test_no_calls_in_the_last_day_says_so(tmp_path: Path) -> None:
    lines = show(landed(tmp_path / "w.duckdb"), "--now", "2020-01-01T00:00:00")
    assert lines[-1] == "    none"
