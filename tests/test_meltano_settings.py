"""meltano.yml declares every setting the tap accepts with the kind of its JSON type (so
`meltano config set` stores an object as an object), and docs/meltano.md's phone-number
stream map names every stream's caller and callee fields (test_e2e_settings.py runs it)."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import yaml

from tap_callcdr.tap import VENDORS, TapCallCDR

ROOT = Path(__file__).resolve().parent.parent
# JSON type -> the Meltano kinds that store it as such
KINDS = {
    "object": {"object"},
    "array": {"array"},
    "boolean": {"boolean"},
    "integer": {"integer"},
    "number": {"integer", "decimal"},  # meltano.yml: whole seconds (Meltano 4.4's decimal crashes)
    "string": {"string", "date_iso8601", "password", "options", None},
}
FAKE = {  # a well-formed account of each vendor, to list every stream
    "generic": {"api_url": "http://127.0.0.1:9/", "appid": "a", "accesskey": "b"},
    "tencent": {"api_url": "http://127.0.0.1:9/", "id": "a", "app_id": "b"},
    "itnio": {"api_key": "a", "api_secret": "b"},
    "yeastar": {"api_url": "https://127.0.0.1:9/", "username": "a", "password": "b"},
}


def tap_settings() -> dict[str, dict[str, t.Any]]:
    meltano = yaml.safe_load((ROOT / "meltano.yml").read_text())
    [tap] = [p for p in meltano["plugins"]["extractors"] if p["name"] == "tap-callcdr"]
    return {setting["name"]: setting for setting in tap["settings"]}


def test_meltano_yml_declares_every_setting_with_its_kind() -> None:
    schema = TapCallCDR.config_jsonschema
    TapCallCDR.append_builtin_config(schema)  # the SDK's own: stream_maps, batch_config...
    declared = tap_settings()
    assert set(schema["properties"]) <= set(declared), "undeclared: stored as strings by meltano"
    for name, prop in schema["properties"].items():
        [json_type] = [kind for kind in prop["type"] if kind != "null"]
        assert declared[name].get("kind") in KINDS[json_type], (name, json_type)
        assert declared[name].get("description"), name


def documented_map() -> dict[str, dict[str, str]]:
    text = (ROOT / "docs" / "meltano.md").read_text()
    section = text.split("## Hashing phone numbers", 1)[1]
    return json.loads(section.split("```json", 1)[1].split("```", 1)[0])


def test_documented_stream_map_hashes_two_existing_fields_of_every_stream() -> None:
    config = {"start_date": "2026-01-01T00:00:00Z"}
    config |= {v.setting: [{"name": "a", **FAKE[v.setting.removesuffix("_accounts")]}] for v in VENDORS}
    streams = TapCallCDR(config=config).streams
    stream_map = documented_map()
    assert set(stream_map) == set(streams)
    for name, fields in stream_map.items():
        properties = streams[name].schema["properties"]
        assert len(fields) == 2 and set(fields) <= set(properties), name
        assert set(fields).isdisjoint(streams[name].primary_keys), name
        assert all(properties[f]["type"] == ["string", "null"] for f in fields), name
