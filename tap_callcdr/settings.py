"""Settings the tap knows, and a misspelt one caught before it is silently ignored.

The config schema says `additionalProperties: false` at the top level and in every
vendor's account items (so `--about` documents it); the SDK's own settings for the tap's
capabilities (stream maps, flattening, batch, ...) are in the schema it validates, so
they stay accepted. JSON Schema's own message for an unknown key names neither the key's
path nor what was meant: `check_known` says both, in one line.
"""

from __future__ import annotations

import difflib
import typing as t

from tap_callcdr.errors import ConfigError

LISTED = 12  # at most this many known settings are listed when none is near the unknown one


def check_known(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> None:
    """Raise ConfigError for the first key `schema` refuses as unknown, anywhere it is closed."""
    _check(config, schema, "")


def _check(value: t.Any, schema: t.Mapping[str, t.Any], where: str) -> None:
    if isinstance(value, t.Mapping) and schema.get("additionalProperties") is False:
        known = schema.get("properties") or {}
        for key in value:
            if key not in known:
                raise ConfigError(f"{where}.{key}" if where else key, unknown(str(key), list(known)))
        for key, item in value.items():
            _check(item, known[key], f"{where}.{key}" if where else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), t.Mapping):
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{index}]")


def unknown(key: str, known: list[str]) -> str:
    """What to say about an unknown key: the nearest known one, or what is known."""
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if near:
        return f"unknown setting; did you mean '{near[0]}'?"
    if len(known) <= LISTED:
        return f"unknown setting; known here: {', '.join(sorted(known))}"
    return "unknown setting (`tap-callcdr --about` lists every setting)"
