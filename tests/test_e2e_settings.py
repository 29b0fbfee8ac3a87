"""End-to-end, through the real `meltano` CLI and meltano.yml: settings a Meltano user sets.

- use_singer_decimal: ITNIO's money lands in target-postgres as NUMERIC(38,18), and in
  target-duckdb as the vendor's text, which the one view line of docs/meltano.md makes
  DECIMAL(38,18), every digit the vendor's in both.
- docs/meltano.md's phone-number stream map, set with `meltano config set`, hashes the
  caller and callee numbers and changes nothing else.
- `meltano config test tap-callcdr` passes, and with a bad secret fails in one line.

One simulator with the ITNIO accounts of the end-to-end tests serves every test here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql
from test_e2e_meltano import new_schema
from test_meltano_settings import documented_map
from vendors import TESTED

pytestmark = pytest.mark.e2e

DAYS = 1
ITNIO = next(v for v in TESTED if v.name == "itnio")
MONEY = {s.name: s.money for s in ITNIO.streams}  # stream -> its money columns

# docs/meltano.md's line for DuckDB (target-duckdb makes text VARCHAR): money exact, per stream
DUCKDB_VIEW = (
    "CREATE OR REPLACE VIEW callcdr.{table}_exact AS SELECT * REPLACE ({casts}) FROM callcdr.{table}"
)


@pytest.fixture(scope="module")
def itnio_sim(simulator_launcher: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("e2e-settings")
    anchor = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    config = {v.name: [] for v in TESTED} | {
        ITNIO.name: ITNIO.e2e_accounts(DAYS),
        "anchor": anchor.isoformat(),
    }
    sim = simulator_launcher(work, anchor=anchor, config=config)
    sim.start_date = (anchor - timedelta(days=DAYS + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    yield sim
    sim.stop()


def tap_env(sim: Any) -> dict[str, str]:
    accounts = [
        ITNIO.e2e_tap_account(a, sim.api_url(ITNIO.name, a["name"]), None)
        for a in ITNIO.e2e_accounts(DAYS)
    ]
    return {
        "TAP_CALLCDR_START_DATE": sim.start_date,
        f"TAP_CALLCDR_{ITNIO.setting.upper()}": json.dumps(accounts),
    }


def money_truth(sim: Any) -> dict[str, dict[tuple[str, str], dict[str, str]]]:
    """stream -> (account, voiceId) -> {money column: the vendor's text}."""
    truth: dict[str, dict[tuple[str, str], dict[str, str]]] = {s: {} for s in MONEY}
    for account in ITNIO.e2e_accounts(DAYS):
        for raw in sim.truth(account["name"], vendor=ITNIO.name):
            stream = next(s.name for s in ITNIO.streams if s.holds(raw))
            key = (account["name"], raw["voiceId"])
            truth[stream][key] = {column: raw[column] for column in MONEY[stream]}
    assert all(truth.values()), "test setup: the simulator has no ITNIO records"
    return truth


def test_use_singer_decimal_lands_numeric_38_18_in_postgres(
    meltano_postgres: Any, postgres: Any, itnio_sim: Any, tmp_path: Path
) -> None:
    schema = new_schema("e2e_decimal")
    env = meltano_postgres.env(
        tmp_path,
        **tap_env(itnio_sim),
        TAP_CALLCDR_USE_SINGER_DECIMAL="true",
        **postgres.target_env(schema),
    )
    meltano_postgres.check("run", "tap-callcdr", "target-postgres", env=env)
    for stream, expected in money_truth(itnio_sim).items():
        columns = MONEY[stream]
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            kinds = conn.execute(
                "SELECT column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                [schema, stream],
            ).fetchall()
            query = sql.SQL("SELECT account, {}, {} FROM {}.{}").format(
                sql.Identifier("voiceId"),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(schema),
                sql.Identifier(stream),
            )
            rows = conn.execute(query).fetchall()
        kind = {name: (data_type, p, s) for name, data_type, p, s in kinds}
        assert {c: kind[c] for c in columns} == dict.fromkeys(columns, ("numeric", 38, 18))
        landed = {(a, v): dict(zip(columns, money, strict=True)) for a, v, *money in rows}
        assert landed.keys() == expected.keys()
        wrong = [
            (key, c) for key, want in expected.items() for c in columns
            if landed[key][c] != (Decimal(want[c]) if want[c] != "" else None)
        ]  # fmt: skip
        assert not wrong, f"{stream}: {len(wrong)} values not the vendor's, e.g. {wrong[:3]}"


def test_use_singer_decimal_and_one_view_line_make_duckdb_exact(
    meltano: Any, itnio_sim: Any, tmp_path: Path
) -> None:
    meltano.install("tap-callcdr", "target-duckdb")
    db = tmp_path / "landed.duckdb"
    env = meltano.env(
        tmp_path,
        **tap_env(itnio_sim),
        TAP_CALLCDR_USE_SINGER_DECIMAL="true",
        TARGET_DUCKDB_FILEPATH=str(db),
        TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA="callcdr",
    )
    meltano.check("run", "tap-callcdr", "target-duckdb", env=env)
    con = duckdb.connect(str(db))
    try:
        for stream, expected in money_truth(itnio_sim).items():
            columns = MONEY[stream]
            casts = ", ".join(f"{c.lower()}::DECIMAL(38,18) AS {c.lower()}" for c in columns)
            con.execute(DUCKDB_VIEW.format(table=stream, casts=casts))
            picked = ", ".join(c.lower() for c in columns)
            for table, want in ((stream, str), (f"{stream}_exact", Decimal)):
                rows = con.execute(f'SELECT account, "voiceid", {picked} FROM callcdr.{table}').fetchall()
                kinds = {type(v) for row in rows for v in row[2:] if v is not None}
                assert kinds == {want}, (table, kinds)
                landed = {(a, v): list(money) for a, v, *money in rows}
                assert landed == {
                    key: [want(m[c]) if m[c] != "" else None for c in columns] for key, m in expected.items()
                }
    finally:
        con.close()


def singer_output(meltano: Any, env: dict[str, str]) -> dict[str, Any]:
    """`meltano invoke tap-callcdr`'s records by stream and key, and its schemas."""
    lines = meltano.check("invoke", "tap-callcdr", env=env).stdout.splitlines()
    messages = [json.loads(line) for line in lines if line.startswith("{")]
    schemas = [m for m in messages if m["type"] == "SCHEMA"]
    out: dict[str, Any] = {"SCHEMA": {m["stream"]: m["schema"] for m in schemas}}
    keys = {m["stream"]: m["key_properties"] for m in schemas}  # calls' too: Meltano selects it
    for m in messages:
        if m["type"] == "RECORD":
            key = tuple(m["record"][k] for k in keys[m["stream"]])
            out.setdefault(m["stream"], {})[key] = m["record"]
    return out


def test_stream_map_set_through_meltano_config_hashes_phone_numbers(
    meltano: Any, itnio_sim: Any, tmp_path: Path
) -> None:
    meltano.install("tap-callcdr")
    salt = "pepper-S3cr3t"
    for state_dir in ("plain", "mapped"):
        (tmp_path / state_dir).mkdir()
    plain = singer_output(meltano, meltano.env(tmp_path / "plain", **tap_env(itnio_sim)))
    map_config = json.dumps({"hash_salt": salt})  # the secret salt: from the environment
    env = meltano.env(tmp_path / "mapped", **tap_env(itnio_sim), TAP_CALLCDR_STREAM_MAP_CONFIG=map_config)
    stream_map = documented_map()
    # the system database, not the repository's meltano.yml (the default store)
    set_map = ("config", "set", "--store=db", "tap-callcdr", "stream_maps", json.dumps(stream_map))
    meltano.check(*set_map, env=env)
    stored = json.loads(meltano.check("invoke", "--dump=config", "tap-callcdr", env=env).stdout)
    assert stored["stream_maps"] == stream_map  # an object, not its JSON text
    mapped = singer_output(meltano, env)
    # ITNIO's schemas unchanged (calls' mapped properties are retyped by the SDK's map; its
    # hashing is held by test_calls_stream.py)
    assert {s: mapped["SCHEMA"][s] for s in MONEY} == {s: plain["SCHEMA"][s] for s in MONEY}
    for stream in MONEY:
        hashed = stream_map[stream]
        assert mapped[stream].keys() == plain[stream].keys() and plain[stream]
        for key, record in plain[stream].items():
            want = {
                k: hashlib.md5((salt + v).encode()).hexdigest() if k in hashed and v else v
                for k, v in record.items()
            }
            assert mapped[stream][key] == want
        numbers = [(key, f) for key, record in plain[stream].items() for f in hashed if record[f]]
        assert numbers and all(plain[stream][k][f] != mapped[stream][k][f] for k, f in numbers)


def test_config_test_passes_and_fails_in_one_line_with_a_bad_secret(
    meltano: Any, itnio_sim: Any, tmp_path: Path
) -> None:
    meltano.install("tap-callcdr")
    good = meltano.check("config", "test", "tap-callcdr", env=meltano.env(tmp_path, **tap_env(itnio_sim)))
    assert "Plugin configuration is valid" in good.stdout + good.stderr

    wrong = "wrong-S3cr3t"
    env = tap_env(itnio_sim)
    accounts = json.loads(env[f"TAP_CALLCDR_{ITNIO.setting.upper()}"])
    env[f"TAP_CALLCDR_{ITNIO.setting.upper()}"] = json.dumps([{**a, "api_secret": wrong} for a in accounts])
    bad = meltano("config", "test", "tap-callcdr", env=meltano.env(tmp_path, **env))
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "Plugin configuration is invalid" in output
    # the tap's one line, then Meltano's own advice
    told, *advice = output.split("Plugin configuration is invalid", 1)[1].strip().splitlines()
    assert advice[0].startswith("Run 'meltano config list tap-callcdr'"), output[-3000:]
    assert "account 'intl'" in told and "check the account's api_key and api_secret" in told, told
    assert "Traceback" not in output and wrong not in output
