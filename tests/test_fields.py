"""FieldConverters builds exactly what the plain per-field comprehension builds."""

from __future__ import annotations

import json
import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_callcdr.core.fields import FieldConverters, Text, as_text, to_integer


def text_or_json(value: t.Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


CONVERTERS = {
    "id": to_integer,
    "name": Text(as_text),
    "note": Text(text_or_json),
    "when": lambda value: None if not value else f"{value}Z",
    "count": to_integer,
}
values = st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5), st.lists(st.integers(), max_size=2))


def plain(row: dict[str, t.Any]) -> dict[str, t.Any]:
    return {name: convert(row.get(name)) for name, convert in CONVERTERS.items()}


@given(
    st.fixed_dictionaries(
        {"id": st.integers(0, 9), "count": st.one_of(st.none(), st.integers(0, 9))},
        optional={"name": values, "note": values, "when": st.text(max_size=3), "extra": values},
    )
)
def test_same_record_as_the_plain_comprehension(row: dict[str, t.Any]) -> None:
    fast = FieldConverters(CONVERTERS)(row)
    assert fast == plain(row)
    assert list(fast) == list(CONVERTERS)  # same key order: the same RECORD line bytes
    assert [type(v) for v in fast.values()] == [type(v) for v in plain(row).values()]


def test_errors_still_raise() -> None:
    with pytest.raises(TypeError):
        FieldConverters(CONVERTERS)({"id": 1.5})


@pytest.mark.parametrize("texts", [0, 1, 2])
def test_any_number_of_text_fields(texts: int) -> None:
    converters = {"id": to_integer, **{f"t{i}": Text(as_text) for i in range(texts)}}
    row = {"id": "7", "t0": 5, "t1": None}
    assert FieldConverters(converters)(row) == {name: c(row.get(name)) for name, c in converters.items()}


@given(
    st.fixed_dictionaries({"id": st.integers(0, 9)}, optional={"name": values, "when": st.text(max_size=3)}),
    st.sampled_from([("account",), ("account", "name")]),  # a lead field may also be converted
)
def test_record_is_lead_then_converted(row: dict[str, t.Any], lead: tuple[str, ...]) -> None:
    """`record` builds in one dict what the vendors built as {lead...} updated with convert(row)."""
    convert = FieldConverters(CONVERTERS, lead=lead)
    firsts = [f"lead-{name}" for name in lead]
    expected = dict(zip(lead, firsts, strict=True))
    expected.update(convert(row))
    record = convert.record(row, *firsts)
    assert record == expected
    assert list(record) == list(expected)  # same key order: the same RECORD line bytes
