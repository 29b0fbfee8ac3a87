"""The unified `calls` stream's selection, state and cost (docs/calls.md), on every vendor of
the vendor table whose mapping exists: one simulator run with every vendor's e2e accounts (their
zones, doc versions and time formats differ on purpose), read by the tap in-process over real
sockets, once per selection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import ssl
import typing as t
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest
from callcdr_simulator import Simulator, simulator_tls
from e2e_truth import DAYS, expected_rows, identity
from harness import parse_messages
from test_meltano_settings import documented_map
from vendors import STREAMS, TESTED

from tap_callcdr.core.calls import CORE_FIELDS, MAPPED_FIELDS
from tap_callcdr.core.windows import iso_utc
from tap_callcdr.tap import VENDORS, TapCallCDR

CALLS = "calls"
MAPPINGS = {spec.key: spec.calls for spec in VENDORS if spec.calls is not None}
MAPPED = [vendor for vendor in TESTED if vendor.name in MAPPINGS]
SOURCES = [stream for stream, (vendor, _) in STREAMS.items() if vendor.name in MAPPINGS]
FAST_RETRIES = {"retry_wait_seconds": 0.01, "max_retries": 3, "request_timeout_seconds": 10}


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Simulator]]:
    """Every mapped vendor's e2e accounts: plain HTTP, and HTTPS for the vendors that want it."""
    anchor = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    tls = simulator_tls(tmp_path_factory.mktemp("tls") / "ca.pem")
    started = {}
    for https in (False, True):
        accounts = [
            vendor.simulated.account_type.from_dict(account)
            for vendor in MAPPED if vendor.https == https
            for account in vendor.e2e_accounts(DAYS)
        ]  # fmt: skip
        if accounts:
            context = tls.context if https else None
            started[https] = Simulator(accounts, anchor=anchor, ssl_context=context).start()
    sims = {vendor.name: started[vendor.https] for vendor in MAPPED}
    for sim in started.values():
        sim.ca_file = tls.ca_file  # type: ignore[attr-defined]
    yield sims
    for sim in started.values():
        sim.stop()


def tap_config(sims: dict[str, Simulator], **overrides: t.Any) -> dict[str, t.Any]:
    """Every mapped vendor's accounts, from 1 day before the simulated calls."""
    anchor = next(iter(sims.values())).anchor
    config: dict[str, t.Any] = {"start_date": iso_utc(anchor - dt.timedelta(days=DAYS + 1)), **FAST_RETRIES}
    for vendor in MAPPED:
        sim = sims[vendor.name]
        ca_file = sim.ca_file if vendor.https else None  # type: ignore[attr-defined]
        config[vendor.setting] = [
            vendor.e2e_tap_account(account, vendor.simulated.api_url(sim.url, account["name"]), ca_file)
            for account in vendor.e2e_accounts(DAYS)
        ]
    return {**config, **overrides}


def catalog(config: dict[str, t.Any], selected: t.Collection[str]) -> dict[str, t.Any]:
    """The tap's discovered catalog with exactly the `selected` streams selected."""
    entries = TapCallCDR(config=config).catalog_dict
    for entry in entries["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return entries


def run(config: dict[str, t.Any], selected: t.Collection[str], state: dict | None = None) -> list[dict]:
    """The messages of an in-process run reading the `selected` streams (numbers as Decimals,
    as SDK targets read them)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap = TapCallCDR(config=config, catalog=catalog(config, selected), state=state)
        tap.sync_all()
        tap.message_writer.flush()
    return parse_messages(out.getvalue(), parse_float=Decimal)


def control(sim: Simulator, method: str, path: str) -> t.Any:
    """The simulator's control API over HTTP (as a benchmark in another process uses it)."""
    https = sim.url.startswith("https")
    context = ssl.create_default_context(cafile=str(sim.ca_file)) if https else None  # type: ignore[attr-defined]
    request = urllib.request.Request(sim.url + path, method=method)
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        return json.loads(answer.read())


def requests_of(sims: dict[str, Simulator]) -> dict[str, t.Any]:
    return {url: control(sim, "GET", "/_control/requests/counts") for url, sim in by_url(sims).items()}


def by_url(sims: dict[str, Simulator]) -> dict[str, Simulator]:
    return {sim.url: sim for sim in sims.values()}


CASES = {"vendor streams": SOURCES, "calls alone": [CALLS], "both": [*SOURCES, CALLS]}


@pytest.fixture(scope="module")
def runs(sims: dict[str, Simulator]) -> dict[str, tuple[list[dict], dict[str, t.Any]]]:
    """Each selection's messages and the requests the simulators answered for it."""
    config, done = tap_config(sims), {}
    for case, selected in CASES.items():
        for sim in by_url(sims).values():
            control(sim, "DELETE", "/_control/requests")
        done[case] = (run(config, selected), requests_of(sims))
    return done


def records(messages: list[dict], stream: str) -> list[dict[str, t.Any]]:
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


def expected_calls(stream: str, vendor_records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Each record as its vendor's `to_call` maps it, plus the core's fields."""
    vendor = STREAMS[stream][0].name
    core = {"vendor": vendor, "source_stream": stream}
    return [{**core, "account": r["account"], **MAPPINGS[vendor](stream, r)} for r in vendor_records]


def by_pk(calls: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return sorted(calls, key=lambda call: (call["vendor"], call["account"], call["call_id"]))


def test_there_are_mappings_to_test() -> None:
    assert MAPPED, "no vendor has a calls mapping: these tests test nothing"


@pytest.mark.parametrize("case", CASES)
def test_each_selection_emits_what_is_selected_in_order(runs: dict, case: str) -> None:
    """Only the selected streams; each SCHEMA before its RECORDs; and a STATE never precedes
    the data it covers: no record comes after a STATE whose bookmark of its partition is past
    its start (a first run reads windows oldest first)."""
    messages, _ = runs[case]
    emitted = {m["stream"] for m in messages if m["type"] == "RECORD"}
    assert emitted == set(CASES[case])
    schemas = {m["stream"]: i for i, m in enumerate(messages) if m["type"] == "SCHEMA"}
    assert set(schemas) == emitted
    assert_no_state_before_its_data(messages, schemas)


def assert_no_state_before_its_data(messages: list[dict], schemas: dict[str, int]) -> None:
    """No RECORD after a STATE whose bookmark of the record's partition is past its start
    (a first run reads windows oldest first); each after its stream's SCHEMA."""
    bookmarks: dict[tuple[str, tuple], str] = {}
    for index, message in enumerate(messages):
        if message["type"] == "STATE":
            for stream, state in message["value"]["bookmarks"].items():
                for partition in state.get("partitions", []):
                    if partition.get("replication_key_value"):
                        context = tuple(sorted(partition["context"].items()))
                        bookmarks[stream, context] = partition["replication_key_value"]
        elif message["type"] == "RECORD":
            stream, record = message["stream"], message["record"]
            assert schemas[stream] < index, f"a {stream} RECORD before its SCHEMA"
            if stream == CALLS:
                context = (("account", record["account"]), ("source_stream", record["source_stream"]))
                start = record["started_at"]
            else:
                context, start = (("account", record["account"]),), record[STREAMS[stream][1].replication_key]
            covered = bookmarks.get((stream, context))
            assert covered is None or start >= covered, f"a STATE covering {stream} {record} came before it"


def test_the_vendor_requests_are_the_same_whatever_is_selected(runs: dict) -> None:
    """`calls` next to the vendor streams adds no request; `calls` alone makes the same ones."""
    counts = {case: requests for case, (_, requests) in runs.items()}
    assert all(count["total"] for count in counts["vendor streams"].values()), "no requests: proves nothing"
    assert counts["both"] == counts["vendor streams"]
    assert counts["calls alone"] == counts["vendor streams"]


def test_both_streams_come_from_the_same_rows(runs: dict) -> None:
    """With both selected, the vendor records are those of the vendor streams alone, and the
    calls are those of `calls` alone: each the vendor's `to_call` of its vendor record."""
    both, _ = runs["both"]
    alone, _ = runs["vendor streams"]
    for stream in SOURCES:
        assert by_source(records(both, stream)) == by_source(records(alone, stream))
    calls = records(both, CALLS)
    assert by_pk(calls) == by_pk(records(runs["calls alone"][0], CALLS))
    for stream in SOURCES:
        mine = [call for call in calls if call["source_stream"] == stream]
        assert by_pk(mine) == by_pk(expected_calls(stream, records(both, stream)))
        assert all(set(call) == {*CORE_FIELDS, *MAPPED_FIELDS} for call in mine)


def by_source(rows: list[dict[str, t.Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


@pytest.mark.parametrize("stream", SOURCES)
def test_every_simulated_call_lands_in_calls_at_its_exact_instant(
    runs: dict, sims: dict[str, Simulator], stream: str
) -> None:
    """Every call of the simulator's truth is in `calls` once, started at the instant the
    vendor's raw time means (its account's zone, time format, doc version)."""
    vendor, landing = STREAMS[stream]
    truth = {}
    for account in vendor.e2e_accounts(DAYS):
        for raw in sims[vendor.name].vendor(vendor.name).truth(account["name"]):
            if landing.holds(raw):
                key, want = expected_rows(stream, account, raw)
                truth[key] = want
    messages, _ = runs["both"]
    pairs = zip(records(messages, stream), expected_calls(stream, records(messages, stream)), strict=True)
    landed = {}
    for record, call in pairs:
        key = identity(stream, typed_instants(stream, record))
        assert key not in landed, f"{stream} {key} twice"
        landed[key] = call
    assert landed.keys() == truth.keys()
    for key, call in landed.items():
        assert call["started_at"] == iso_utc(truth[key][landing.replication_key]), key
    calls = [call for call in records(messages, CALLS) if call["source_stream"] == stream]
    assert by_pk(calls) == by_pk(list(landed.values()))
    assert len({(c["account"], c["call_id"]) for c in calls}) == len(calls), "a primary key twice"


def typed_instants(stream: str, record: dict[str, t.Any]) -> dict[str, t.Any]:
    """The record with its time columns as datetimes, as the truth's identities hold them."""
    times = STREAMS[stream][1].time_columns
    return {k: dt.datetime.fromisoformat(v) if k in times and v else v for k, v in record.items()}


def test_calls_has_its_own_bookmark_per_source_stream_and_account(runs: dict) -> None:
    messages, _ = runs["calls alone"]
    state = [m["value"] for m in messages if m["type"] == "STATE"][-1]["bookmarks"]
    contexts = [p["context"] for p in state[CALLS]["partitions"] if p.get("replication_key_value")]
    assert sorted(map(sorted_items, contexts)) == sorted(
        sorted_items({"source_stream": stream, "account": account["name"]})
        for stream in SOURCES
        for account in STREAMS[stream][0].e2e_accounts(DAYS)
    )
    untouched = {stream: state.get(stream, {}).get("partitions") for stream in SOURCES}
    assert not any(untouched.values()), f"calls alone moved the vendor streams' own state: {untouched}"


def sorted_items(mapping: dict[str, t.Any]) -> list[tuple[str, t.Any]]:
    return sorted(mapping.items())


def test_calls_newly_selected_next_to_vendor_bookmarks_reads_from_the_earlier(
    runs: dict, sims: dict[str, Simulator]
) -> None:
    """The vendor streams' state is at the end; `calls` has none: the run reads from
    start_date, so every call lands in `calls`, and the vendor records are sent again."""
    vendor_only, _ = runs["vendor streams"]
    state = [m["value"] for m in vendor_only if m["type"] == "STATE"][-1]
    messages = run(tap_config(sims), [*SOURCES, CALLS], state=state)
    assert by_pk(records(messages, CALLS)) == by_pk(records(runs["both"][0], CALLS))
    for stream in SOURCES:
        assert len(records(messages, stream)) == len(records(vendor_only, stream))


def test_the_sdk_loop_tees_the_same_calls(runs: dict, sims: dict[str, Simulator]) -> None:
    """A stream map on the vendor streams keeps them in the SDK's record loop: `calls` is fed
    per record there, with the same calls."""
    stream_maps = {stream: {"mapped": "1"} for stream in SOURCES}
    messages = run(tap_config(sims, stream_maps=stream_maps), [*SOURCES, CALLS])
    assert all(r["mapped"] == 1 for stream in SOURCES for r in records(messages, stream))
    assert by_pk(records(messages, CALLS)) == by_pk(records(runs["both"][0], CALLS))


def test_calls_is_not_selected_by_default_and_costs_nothing_then(sims: dict[str, Simulator]) -> None:
    """Without a catalog every vendor stream is read, `calls` is not, and no stream tees."""
    tap = TapCallCDR(config=tap_config(sims))
    assert CALLS in tap.streams and not tap.streams[CALLS].selected
    assert all(tap.streams[stream].record_tee is None for stream in SOURCES)


def test_cost_is_money_like_the_vendor_streams(sims: dict[str, Simulator]) -> None:
    plain = TapCallCDR(config=tap_config(sims)).streams[CALLS].schema["properties"]["cost"]
    money_as_text = tap_config(sims, use_singer_decimal=True)
    text = TapCallCDR(config=money_as_text).streams[CALLS].schema["properties"]["cost"]
    assert "number" in plain["type"] and "format" not in plain
    assert text["format"] == "x-singer.decimal" and "string" in text["type"]
    assert (text["precision"], text["scale"]) == (38, 18)



def test_the_documented_pii_map_hashes_the_numbers_of_calls(runs: dict, sims: dict[str, Simulator]) -> None:
    """A vendor stream's map does not reach `calls`, which has its own entry in docs/meltano.md's
    map: its numbers are hashed, and Yeastar's call_id and source_key (its row_id) as that map
    hashes yeastar_cdr's row_id; nothing else changes."""
    salt = "pepper"
    stream_maps = {CALLS: documented_map()[CALLS]}
    config = tap_config(sims, stream_maps=stream_maps, stream_map_config={"hash_salt": salt})
    mapped = records(run(config, [*SOURCES, CALLS]), CALLS)

    def hashed(call: dict[str, t.Any]) -> dict[str, t.Any]:
        fields = ["caller", "callee"] + (["call_id", "source_key"] if call["vendor"] == "yeastar" else [])
        return {**call, **{f: hashlib.md5((salt + call[f]).encode()).hexdigest() for f in fields if call[f]}}

    plain = records(runs["both"][0], CALLS)
    assert any(call["caller"] for call in plain), "no number to hash: proves nothing"
    assert by_pk(mapped) == by_pk([hashed(call) for call in plain])


def test_with_batch_config_calls_come_as_records_before_the_state_after_their_batch(
    runs: dict, sims: dict[str, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """BATCH files for the vendor streams (several a stream), RECORDs for `calls`: the same
    calls, each before the first STATE that follows its vendor stream's BATCH covering it."""
    root = tmp_path_factory.mktemp("batches")
    batches = {"encoding": {"format": "jsonl"}, "storage": {"root": root.as_uri()}, "batch_size": 100}
    messages = run(tap_config(sims, batch_config=batches), [*SOURCES, CALLS])
    assert {m["stream"] for m in messages if m["type"] == "BATCH"} == set(SOURCES)
    assert not [m for m in messages if m["type"] == "RECORD" and m["stream"] != CALLS]
    assert by_pk(records(messages, CALLS)) == by_pk(records(runs["both"][0], CALLS))
    schemas = {m["stream"]: i for i, m in enumerate(messages) if m["type"] == "SCHEMA"}
    assert_no_state_before_its_data(messages, schemas)


def test_row_workers_stay_off_while_calls_is_teed(sims: dict[str, Simulator]) -> None:
    """Teeing needs every record as a dict: a worker's encoded lines would be decoded again
    (measured: as much CPU or more, slower; docs/calls.md). Without calls they start."""
    config = tap_config(sims, row_workers=2)
    workers = [s for s in SOURCES if getattr(TapCallCDR(config=config).streams[s], "row_task", None)]
    assert workers, "no vendor with row workers: proves nothing"
    alone = TapCallCDR(config=config, catalog=catalog(config, SOURCES)).streams
    teed = TapCallCDR(config=config, catalog=catalog(config, [*SOURCES, CALLS])).streams
    assert all(alone[s].row_worker_count(2) > 0 for s in workers)
    assert all(teed[s].row_worker_count(2) == 0 for s in workers)


def test_calls_alone_saves_its_progress_as_the_vendor_streams_do(runs: dict) -> None:
    """A calls-only run (a backfill) writes its STATEs as it reads, by the same rule as the
    vendor streams, not one at its end: killed half way, it keeps what it read."""
    states = {case: sum(m["type"] == "STATE" for m in messages) for case, (messages, _) in runs.items()}
    assert states["vendor streams"] > 2, states
    assert states["calls alone"] >= states["vendor streams"] / 2, states
