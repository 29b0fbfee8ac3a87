"""Catalog schemas that keep every keyword the tap's streams declare.

The SDK's catalog (singerlib's `Schema`) keeps only the JSON Schema keywords it models, and
SCHEMA messages are written from it (the tap's stream maps are registered from the catalog,
discovered or given). It drops `precision` and `scale`, which SQL loaders read to make an
`x-singer.decimal` property DECIMAL(precision, scale): without them target-snowflake's
DECIMAL is NUMBER(38,0), which rounds money to whole units. `keep_declared_keywords` puts a
stream's own keywords back into the catalog's property schemas before that registration.
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections.abc import Mapping

from singer_sdk.singerlib import Catalog, Schema


class KeptSchema(Schema):
    """A property's catalog schema that writes back the keywords Schema does not model."""

    kept: dict[str, t.Any]

    @classmethod
    def of(cls, schema: Schema, kept: dict[str, t.Any]) -> KeptSchema:
        copy = cls(**{f.name: getattr(schema, f.name) for f in dataclasses.fields(schema)})
        copy.kept = kept
        return copy

    def to_dict(self) -> dict[str, t.Any]:  # type: ignore[override]
        return {**super().to_dict(), **self.kept}


def keep_declared_keywords(catalog: Catalog, schemas: Mapping[str, dict[str, t.Any]]) -> None:
    """Each catalog property of a stream in `schemas` (name -> the stream's own schema) with
    the same type and format as declared regains the declared keywords it lost."""
    for entry in catalog.streams:
        declared = (schemas.get(entry.tap_stream_id) or {}).get("properties") or {}
        properties = entry.schema.properties or {}
        for name, prop in properties.items():
            own = declared.get(name)
            if own is None or (prop.type, prop.format) != (own.get("type"), own.get("format")):
                continue
            written = prop.to_dict()
            lost = {key: value for key, value in own.items() if key not in written}
            if lost:
                properties[name] = KeptSchema.of(prop, lost)
