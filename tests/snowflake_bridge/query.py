"""TEST ONLY: run Snowflake SQL on what the bridged target-snowflake landed, as a user would query
Snowflake. Runs in the test plugin's venv (fakesnow is there, not in the tests' venv):

    python query.py <FAKESNOW_DB_PATH> <DATABASE> <SCHEMA>  < ["select ...", ...]

prints one JSON object per statement: {"columns": [...], "rows": [[...], ...]}, a TIMESTAMP as
{"timestamp": ISO}, a NUMBER with a scale as {"decimal": "its digits"}, VARIANT as its JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import typing as t
from decimal import Decimal

import fakesnow
import snowflake.connector


def encode(value: t.Any) -> t.Any:
    if isinstance(value, dt.datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def main(db_path: str, database: str, schema: str) -> None:
    statements = json.load(sys.stdin)
    with fakesnow.patch(db_path=db_path):
        conn = snowflake.connector.connect(database=database, schema=schema)
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
            columns = [d.name for d in cursor.description]
            rows = [[encode(v) for v in row] for row in cursor.fetchall()]
            print(json.dumps({"columns": columns, "rows": rows}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
