"""Vendor rows to typed records, one converter per field, in as few Python calls as possible.

This runs for every field of every record, and most fields are text that arrives as text:
those are copied as they are (after one C-level check that they all are text or null),
the others go through their converter. The result is exactly
`{name: convert(row.get(name)) for name, convert in converters.items()}`.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Iterator, Mapping
from operator import call

Convert = Callable[[t.Any], t.Any]
_PLAIN = frozenset({str, type(None)})  # what a Text converter returns unchanged


class Text:
    """A text field's converter: `convert` must return str and None values unchanged."""

    def __init__(self, convert: Convert) -> None:
        self.convert = convert

    def __call__(self, value: t.Any) -> t.Any:
        return self.convert(value)


class FieldConverters(Mapping[str, Convert]):
    """Field name -> converter, callable on a vendor row to build the typed record."""

    def __init__(self, converters: Mapping[str, Convert]) -> None:
        self._all = dict(converters)
        self._text = [name for name, convert in self._all.items() if isinstance(convert, Text)]
        self._text_convert = [self._all[name] for name in self._text]
        self._typed = [name for name in self._all if name not in set(self._text)]
        self._typed_convert = [self._all[name] for name in self._typed]

    def __call__(self, row: Mapping[str, t.Any]) -> dict[str, t.Any]:
        texts = list(map(row.get, self._text))
        if not _PLAIN.issuperset(map(type, texts)):
            texts = list(map(call, self._text_convert, texts))
        record = dict.fromkeys(self._all)  # the fields in their declared order
        record.update(zip(self._text, texts, strict=True))
        typed = map(call, self._typed_convert, map(row.get, self._typed))
        record.update(zip(self._typed, typed, strict=True))
        return record

    def __getitem__(self, name: str) -> Convert:
        return self._all[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)
