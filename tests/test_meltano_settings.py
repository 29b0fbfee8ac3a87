"""meltano.yml declares every setting the tap accepts with the kind of its JSON type (so
`meltano config set` stores an object as an object), and docs/meltano.md's phone-number
stream map hashes every stream's caller and callee numbers (and Yeastar's row_id, a hash of
the row with them) and changes nothing else, for every vendor (test_e2e_settings.py sets it
through `meltano config set`)."""

from __future__ import annotations

import hashlib
import json
import typing as t
from pathlib import Path

import pytest
import yaml
from callcdr_simulator import Simulator
from test_fast_path import configs, http_sim, https_sim, in_process_lines  # noqa: F401 (fixtures)
from vendors import VENDOR_NAMES

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


def test_documented_stream_map_hashes_the_numbers_of_every_stream() -> None:
    config = {"start_date": "2026-01-01T00:00:00Z"}
    config |= {v.setting: [{"name": "a", **FAKE[v.setting.removesuffix("_accounts")]}] for v in VENDORS}
    streams = TapCallCDR(config=config).streams
    stream_map = documented_map()
    assert set(stream_map) == set(streams)
    for name, fields in stream_map.items():
        properties = streams[name].schema["properties"]
        keys = {*streams[name].primary_keys, "source_key"}  # calls' join key: Yeastar's row_id
        numbers = set(fields) - keys
        assert len(numbers) == 2 and numbers <= set(properties), name  # the caller and the callee
        assert all("string" in properties[f]["type"] for f in fields), name  # what md5() returns


def records(lines: list[bytes]) -> list[tuple[str, dict[str, t.Any]]]:
    messages = [json.loads(line) for line in lines if line.startswith(b'{"type":"RECORD"')]
    return [(m["stream"], m["record"]) for m in messages]


def canonical(stream: str, record: dict[str, t.Any]) -> str:
    return json.dumps([stream, record], sort_keys=True)


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
def test_documented_stream_map_changes_only_what_it_hashes(
    vendor: str, http_sim: Simulator, https_sim: tuple[Simulator, Path]  # noqa: F811
) -> None:
    salt = "pepper"
    config = configs(http_sim, https_sim)[vendor]
    stream_map = documented_map()
    plain = records(in_process_lines(config))
    settings = {"stream_maps": stream_map, "stream_map_config": {"hash_salt": salt}}
    mapped = sorted(canonical(*message) for message in records(in_process_lines({**config, **settings})))

    def hashed(stream: str, record: dict[str, t.Any]) -> str:
        numbers = {k: v for k, v in record.items() if k in stream_map[stream] and v}
        md5 = {k: hashlib.md5((salt + v).encode()).hexdigest() for k, v in numbers.items()}
        return canonical(stream, {**record, **md5})

    assert any(r.get(f) for s, r in plain for f in stream_map[s]), "no number to hash: proves nothing"
    assert mapped == sorted(hashed(*message) for message in plain)
