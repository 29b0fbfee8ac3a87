"""Whether the SDK's type conformance would change a record, decided in one cheap pass.

Imports the SDK only when built from a schema, so a row worker (yeastar/worker.py) can use it
with the keys and `usable` flag the tap hands it.
"""

from __future__ import annotations

import decimal
import typing as t

_KEPT_AS_IS = frozenset({str, int, type(None)})  # conformance returns these unchanged
_DECIMAL = decimal.Decimal
_DECIMALS = frozenset({_DECIMAL})


class ConformanceCheck:
    """Whether the SDK's type conformance would return a record unchanged, in one pass.

    Conformance changes only dates and times, bytes, floats and Decimals that are NaN or
    infinite, values of exclusively boolean properties, and nested objects and lists
    (rebuilt); it drops properties the schema lacks. A record of str, int, None and finite
    Decimal values under known properties meets none of these.
    """

    def __init__(self, schema: dict[str, t.Any]) -> None:
        from tap_callcdr.fastpath.sdk import is_exclusive_boolean_type  # here: see the module docstring

        properties: dict[str, t.Any] = schema.get("properties") or {}
        self.keys = frozenset(properties)
        self.usable = not any(is_exclusive_boolean_type(p) for p in properties.values())

    @classmethod
    def of(cls, keys: t.Iterable[str], usable: bool) -> ConformanceCheck:
        """The check another check's `keys` and `usable` describe (handed to a row worker)."""
        check = cls.__new__(cls)
        check.keys, check.usable = frozenset(keys), usable
        return check

    def unchanged(self, record: dict[str, t.Any]) -> bool:
        if not (self.usable and record.keys() <= self.keys):
            return False
        types = set(map(type, record.values()))
        if types <= _KEPT_AS_IS:
            return True
        if types - _KEPT_AS_IS == _DECIMALS:
            return all(v.is_finite() for v in record.values() if type(v) is _DECIMAL)
        return False
