"""ConformanceCheck says "unchanged" only for records the SDK's conformance leaves as they are."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import typing as t

from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk import typing as th
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_callcdr.fastpath.conformance import ConformanceCheck
from tap_callcdr.vendors.generic.schema import SCHEMA as GENERIC
from tap_callcdr.vendors.itnio.schema import SIP_SCHEMA as ITNIO
from tap_callcdr.vendors.tencent.schema import SCHEMA as TENCENT
from tap_callcdr.vendors.yeastar.schema import SCHEMA as YEASTAR

WITH_BOOLEAN = th.PropertiesList(
    th.Property("flag", th.BooleanType), th.Property("n", th.IntegerType), th.Property("s", th.StringType)
).to_dict()
SCHEMAS = [GENERIC, ITNIO, TENCENT, YEASTAR, WITH_BOOLEAN]
# A small fixed alphabet keeps draws cheap: conformance never looks inside strings.
text = st.text(alphabet="aZ0 é张\n\"\\", max_size=4)
values = st.one_of(
    st.none(),
    text,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.floats(width=32),  # NaN and infinities included
    st.decimals(min_value=-(10**6), max_value=10**6, places=3),
    st.sampled_from([decimal.Decimal("NaN"), decimal.Decimal("Infinity"), decimal.Decimal("-Infinity")]),
    st.datetimes(),
    st.dates(),
    st.binary(max_size=2),
    st.dictionaries(text, text, max_size=2),
    st.lists(st.integers(), max_size=2),
)


def conform(record: dict[str, t.Any], schema: dict[str, t.Any]) -> dict[str, t.Any]:
    level = TypeConformanceLevel.RECURSIVE
    return conform_record_data_types("s", record, schema, level, logging.getLogger("test"))


def schema_and_record(schema: dict[str, t.Any]) -> st.SearchStrategy[tuple[dict, dict]]:
    names = st.sampled_from([*schema["properties"], "unknown"])
    return st.tuples(st.just(schema), st.dictionaries(names, values, max_size=3))


Case = tuple[dict[str, t.Any], dict[str, t.Any]]


@settings(max_examples=1500)
@given(st.sampled_from(SCHEMAS).flatmap(schema_and_record))
def test_unchanged_only_when_conformance_changes_nothing(case: Case) -> None:
    schema, record = case
    if ConformanceCheck(schema).unchanged(record):
        conformed = conform(dict(record), schema)
        assert list(conformed.items()) == list(record.items())
        assert [type(v) for v in conformed.values()] == [type(v) for v in record.values()]


def test_typical_records_are_unchanged() -> None:
    record = {"account": "hq", "callId": "x", "duration": 3, "cost": decimal.Decimal("0.10"), "src": None}
    assert ConformanceCheck(ITNIO | {"properties": {k: {} for k in record}}).unchanged(record)
    assert not ConformanceCheck(GENERIC).unchanged({"starttime": dt.datetime(2025, 1, 1)})
    assert not ConformanceCheck(GENERIC).unchanged({"not_in_schema": "x"})
    assert not ConformanceCheck(ITNIO).unchanged({"cost": decimal.Decimal("NaN")})
    assert not ConformanceCheck(ITNIO).unchanged({"cost": float("inf")})  # conformance: None
    assert not ConformanceCheck(WITH_BOOLEAN).unchanged({"n": 1})  # boolean properties: never
