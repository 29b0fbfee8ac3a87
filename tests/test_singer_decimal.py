"""use_singer_decimal: ITNIO's money as `x-singer.decimal` text of the vendor's exact digits,
in the schema SDK loaders make DECIMAL(38,18) (target-snowflake's numbers are FLOAT), from
the tap itself and from its row workers alike; off, money stays a JSON number."""

from __future__ import annotations

import contextlib
import io
import json
import typing as t
from collections.abc import Iterator

import pytest
import sqlalchemy
from callcdr_simulator import Simulator
from callcdr_simulator.itnio import GROUP, SIP, itnio_demo_accounts
from harness import parse_messages, run_tap
from itnio_helpers import GROUP_STREAM, SIP_STREAM, tap_config
from singer_sdk.sql.connector import JSONSchemaToSQL
from test_fast_path import in_process_lines
from test_itnio import ANCHOR

from tap_callcdr.core.errors import MalformedResponseError
from tap_callcdr.fastpath.rowworkers import RowWorkers
from tap_callcdr.tap import TapCallCDR

MONEY = {SIP_STREAM: ("cost", "rate"), GROUP_STREAM: ("cost", "rate", "baseCost")}
ON = {"use_singer_decimal": True}
BEYOND_A_FLOAT = "12345678901234.123456789012"  # 26 digits: a double keeps 15-17
DECIMAL_38_18 = {"type": ["string", "null"], "format": "x-singer.decimal", "precision": 38, "scale": 18}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(
        itnio_demo_accounts(["intl"], calls=300, group_calls=100, days=3), anchor=ANCHOR
    ).start()
    state = simulator.itnio._state("intl")
    state.calls[SIP][0].record["cost"] = BEYOND_A_FLOAT
    state.calls[SIP][1].record["rate"] = "0.0450"  # its trailing zero is the vendor's
    state.calls[GROUP][0].record["baseCost"] = "1.500000000000000000000"  # zeros past scale 18
    yield simulator
    simulator.stop()


def money_schema(config: dict[str, t.Any], stream: str) -> dict[str, t.Any]:
    return TapCallCDR(config=config).streams[stream].schema["properties"]


def test_schema_is_singer_decimal_only_when_on(sim: Simulator) -> None:
    for stream, fields in MONEY.items():
        on, off = money_schema({**tap_config(sim), **ON}, stream), money_schema(tap_config(sim), stream)
        for name in fields:
            assert {k: on[name][k] for k in DECIMAL_38_18} == DECIMAL_38_18
            assert off[name]["type"] == ["number", "null"] and "format" not in off[name]
        assert {k: v for k, v in on.items() if k not in fields} == {
            k: v for k, v in off.items() if k not in fields
        }


def test_sql_loaders_map_it_to_decimal_38_18(sim: Simulator) -> None:
    """The SDK's JSON-schema-to-SQL as target-snowflake 0.20.4 sets it up (number -> DOUBLE:
    here FLOAT): the nullable x-singer.decimal takes the string handler's format path."""
    to_sql = JSONSchemaToSQL(max_varchar_length=None)
    to_sql.register_type_handler("number", sqlalchemy.types.FLOAT)
    on, off = money_schema({**tap_config(sim), **ON}, SIP_STREAM), money_schema(tap_config(sim), SIP_STREAM)
    decimal = to_sql.to_sql_type(on["cost"])
    assert isinstance(decimal, sqlalchemy.types.DECIMAL)
    assert (decimal.precision, decimal.scale) == (38, 18)
    assert isinstance(to_sql.to_sql_type(off["cost"]), sqlalchemy.types.FLOAT)


def assert_exact_text(sim: Simulator, records: dict[str, list[dict[str, t.Any]]]) -> None:
    for stream, endpoint in ((SIP_STREAM, SIP), (GROUP_STREAM, GROUP)):
        truth = {r["voiceId"]: r for r in sim.itnio.truth("intl", endpoint)}
        assert records[stream]
        for record in records[stream]:
            for name in MONEY[stream]:
                assert record[name] == truth[record["voiceId"]][name], (stream, name)


def test_money_is_the_vendors_digits_as_text(sim: Simulator) -> None:
    run = run_tap({**tap_config(sim), **ON, "row_workers": 0})
    records = {s: run.records(s) for s in MONEY}
    assert_exact_text(sim, records)
    values = [r["cost"] for r in records[SIP_STREAM]]
    assert BEYOND_A_FLOAT in values and all(type(v) is str for v in values)
    assert "0.0450" in [r["rate"] for r in records[SIP_STREAM]]


def test_row_workers_emit_the_same_text(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks: list[str] = []
    run = RowWorkers.run
    spy = lambda self, job, payload=b"": tasks.append(job["task"]) or run(self, job, payload)  # noqa: E731
    monkeypatch.setattr(RowWorkers, "run", spy)
    config = {**tap_config(sim), **ON, "row_workers": 2}
    by_workers = in_process_lines(config)
    assert tasks, "the row workers converted nothing: proves nothing"
    assert by_workers == in_process_lines({**config, "row_workers": 0})
    assert any(BEYOND_A_FLOAT.encode() in line for line in by_workers)


def schema_messages(messages: list[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    return {m["stream"]: m["schema"]["properties"] for m in messages if m["type"] == "SCHEMA"}


def assert_money_schemas(messages: list[dict[str, t.Any]]) -> None:
    """What a loader reads: precision and scale in the SCHEMA messages themselves (the SDK's
    catalog drops them; without them target-snowflake's DECIMAL is NUMBER(38,0))."""
    schemas = schema_messages(messages)
    for stream, fields in MONEY.items():
        for name in fields:
            assert {k: schemas[stream][name].get(k) for k in DECIMAL_38_18} == DECIMAL_38_18, (stream, name)


def test_schema_messages_carry_precision_and_scale(sim: Simulator) -> None:
    assert_money_schemas(run_tap({**tap_config(sim), **ON}).messages)


def test_schema_messages_carry_them_with_meltanos_catalog(sim: Simulator) -> None:
    """Meltano passes the discovered catalog, without precision and scale (the SDK's catalog
    and Meltano's both drop keywords they do not model)."""
    config = {**tap_config(sim), **ON}
    catalog = TapCallCDR(config=config).catalog_dict
    for entry in catalog["streams"]:
        for prop in entry["schema"]["properties"].values():
            prop.pop("precision", None), prop.pop("scale", None)
        entry["metadata"][0]["metadata"]["selected"] = True  # as `meltano select` marks it
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallCDR(config=config, catalog=json.loads(json.dumps(catalog)))
        tap.sync_all()
        tap.message_writer.flush()
    messages = parse_messages(out.getvalue())
    assert_money_schemas(messages)
    assert BEYOND_A_FLOAT in [m["record"]["cost"] for m in messages if m["type"] == "RECORD"]


def test_a_value_decimal_38_18_would_round_is_refused(sim: Simulator) -> None:
    sim.itnio._state("intl").calls[SIP][-1].record["cost"] = "0.1234567890123456789"  # 19 decimals
    run = run_tap({**tap_config(sim), **ON}, expect_error=MalformedResponseError)
    assert "field 'cost' has '0.1234567890123456789'" in str(run.error)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("99999999999999999999.9999999999999999999", "more than 18 decimals"),  # 39 digits
        ("12345678901234567890.1234567890123456789", "more than 18 decimals"),
        ("123456789012345678901", "more than 20 whole digits"),
    ],
)
def test_a_long_value_is_refused_for_its_reason_not_the_decimal_context(text: str, reason: str) -> None:
    """Past the default 28-digit context, round() raised InvalidOperation instead of the reason."""
    from tap_callcdr.vendors.itnio.records import _decimal_text

    with pytest.raises(ValueError, match=reason):
        _decimal_text(text)
