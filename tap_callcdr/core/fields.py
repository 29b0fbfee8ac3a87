"""Vendor rows to typed records, one converter per field, in as few Python calls as possible.

This runs for every field of every record, and most fields are text that arrives as text:
those are copied as they are (after one C-level check that they all are text or null),
the others go through their converter. The result is exactly
`{name: convert(row.get(name)) for name, convert in converters.items()}`.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from operator import itemgetter

Convert = Callable[[t.Any], t.Any]
CONVERSION_ERRORS = (TypeError, ValueError, ArithmeticError)  # what a converter refusing a value raises


class RowError(ValueError):
    """A vendor row that cannot be a record (it lacks its identity or time)."""
_PLAIN = frozenset({str, type(None)})  # what a Text converter returns unchanged


class Text:
    """A text field's converter: `convert` must return str and None values unchanged."""

    def __init__(self, convert: Convert) -> None:
        self.convert = convert

    def __call__(self, value: t.Any) -> t.Any:
        return self.convert(value)


class FieldConverters(Mapping[str, Convert]):
    """Field name -> converter, callable on a vendor row to build the typed record.

    `lead` names the fields a vendor's record starts with before the converted ones (the
    account, say): `record` builds all of it in one dict.
    """

    def __init__(self, converters: Mapping[str, Convert], lead: Sequence[str] = ()) -> None:
        self._all = dict(converters)
        self._names = list(self._all)
        self._record_keys = (*lead, *self._names)
        at = list(enumerate(self._all.values()))
        self._typed_at: list[tuple[int, Convert]] = [(i, c) for i, c in at if not isinstance(c, Text)]
        self._text_at: list[tuple[int, Convert]] = [(i, c) for i, c in at if isinstance(c, Text)]
        texts = [i for i, _ in self._text_at]
        # itemgetter of one index returns the value itself, not a 1-tuple
        self._texts_of: Callable[[list[t.Any]], t.Any] = (
            itemgetter(*texts) if len(texts) > 1 else (lambda values: tuple(values[i] for i in texts))
        )

    def __call__(self, row: Mapping[str, t.Any]) -> dict[str, t.Any]:
        return self.convert_values(self.values_of(row))

    def record(self, row: Mapping[str, t.Any], *lead: t.Any) -> dict[str, t.Any]:
        """The `lead` fields' values, then the row's fields converted: what `{lead...}` updated
        with `self(row)` is, built as one dict (a dict less per record)."""
        values = [*lead, *self.convert_in_place(self.values_of(row))]
        return dict(zip(self._record_keys, values, strict=True))

    def values_of(self, row: Mapping[str, t.Any]) -> list[t.Any]:
        """The row's values in this mapping's field order (None where absent)."""
        return list(map(row.get, self._names))

    def convert_values(self, values: list[t.Any]) -> dict[str, t.Any]:
        """The typed record from `values_of(row)`; converts `values` in place."""
        return dict(zip(self._names, self.convert_in_place(values), strict=True))

    def convert_in_place(self, values: list[t.Any]) -> list[t.Any]:
        """`values_of(row)` converted, in place: for a caller building the record itself."""
        if not _PLAIN.issuperset(map(type, self._texts_of(values))):
            for i, convert in self._text_at:
                values[i] = convert(values[i])
        for i, convert in self._typed_at:
            values[i] = convert(values[i])
        return values

    def __getitem__(self, name: str) -> Convert:
        return self._all[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)


def to_integer(value: t.Any) -> int | None:
    """A vendor integer, sent as number or string; empty means unknown, fractions are errors."""
    if type(value) is str:  # the common cases first: CSV cells and quoted JSON numbers,
        return None if not value or value.isspace() else int(value)
    if type(value) is int:  # JSON integers
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or (isinstance(value, float | Decimal) and value != int(value)):
        raise TypeError(value)
    return int(value)


def as_text(value: t.Any) -> str | None:
    return None if value is None else str(value)
