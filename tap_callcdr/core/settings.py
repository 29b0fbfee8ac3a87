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

from jsonschema.validators import validator_for

from tap_callcdr.core.errors import ConfigError

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


def check_types(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> None:
    """Raise ConfigError for the first value of the wrong type or a missing required one.

    JSON Schema's own message quotes the whole wrong value, and a value in the wrong place
    is often a credential or a whole account (an accounts list without its brackets):
    this one names the setting's path and what it should be, never the value.
    """
    validator = validator_for(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(config), key=lambda e: list(e.path))), None)
    if error is None:
        return
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.path)
    where = where.lstrip(".")
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        raise ConfigError(f"{where}.{missing}" if where else missing, "is required")
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        named = " or ".join(str(kind) for kind in wanted if kind != "null")
        raise ConfigError(where or "config", f"must be {'an' if named[:1] in 'aeiou' else 'a'} {named}")
    raise ConfigError(where or "config", f"does not satisfy '{error.validator}': {error.validator_value!r}")


def unknown(key: str, known: list[str]) -> str:
    """What to say about an unknown key: the nearest known one, or what is known."""
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if near:
        return f"unknown setting; did you mean '{near[0]}'?"
    if len(known) <= LISTED:
        return f"unknown setting; known here: {', '.join(sorted(known))}"
    return "unknown setting (`tap-callcdr --about` lists every setting)"
