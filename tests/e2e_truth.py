"""The simulators' ground truth and the two `meltano run`s every end-to-end loader test makes
(test_e2e_meltano.py into PostgreSQL, test_e2e_snowflake.py into Snowflake; test_chaos.py reads
the truth too). What each record must look like once landed comes from the vendors'
tests/<vendor>_helpers.py (tests/landed.py) through tests/vendors.py; how a loader stores a value
(`stored`, `landed`) is the loader test's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vendors import STREAMS, TESTED, VendorUnderTest

DAYS = 2

Key = tuple[str, ...]
Rows = list[dict[str, Any]]
SimulatorProcess = Any  # conftest.SimulatorProcess: a callcdr-simulator subprocess
LandedExactly = Callable[[str, Rows, dict[Key, dict[str, Any]], dict[str, str]], None]


def as_utc(value: datetime | None) -> datetime | None:
    """Column value as an aware UTC datetime (naive `timestamp` columns hold UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def by_key(rows: Rows, key_columns: tuple[str, ...] = ("account", "id")) -> dict[Key, Rows]:
    out: dict[Key, Rows] = {}
    for row in rows:
        out.setdefault(tuple(str(row[c]) for c in key_columns), []).append(row)
    return out


def without_sdc(row: dict[str, Any]) -> dict[str, Any]:
    """Row minus loader bookkeeping columns (_sdc_*), which legitimately change on upsert."""
    return {k: v for k, v in row.items() if not k.startswith("_sdc_")}


# ----------------------------------------------------------- the vendors, as simulated

# Each vendor's accounts, streams and how its raw values land: its tests/<vendor>_helpers.py
# (tests/landed.py lists the facts), read through tests/vendors.py. Accounts differ on purpose
# (zones, doc versions, time formats, answer caps, extra CSV columns): the tap must use each
# account's own.


def sim_accounts(vendor: VendorUnderTest) -> list[dict[str, Any]]:
    """The vendor's accounts as the simulators' --config has them."""
    return vendor.e2e_accounts(DAYS)


def account_names(vendor: VendorUnderTest) -> list[str]:
    return [a["name"] for a in sim_accounts(vendor)]


def key_part(value: Any) -> str:
    """A column of the identity, as text (an instant as UTC ISO, naive or aware)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).isoformat()
    return str(value)


def expected_rows(stream: str, account: dict[str, Any], raw: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    """(identity, {column: the vendor's value}) for one raw vendor record of this simulated
    `account`: every field it sent, times as UTC instants; a loader test's `stored` then
    types the rest as the loader holds them."""
    vendor, landing = STREAMS[stream]
    want = {"account": account["name"], **vendor.fields(raw)}
    for column in landing.time_columns:
        want[column] = vendor.instant(account, want.get(column))
    return tuple(key_part(want[c]) for c in landing.identity), want


def truth(sims: dict[str, SimulatorProcess], stream: str) -> dict[Key, dict[str, Any]]:
    """Identity -> expected column values, for every record the simulator holds."""
    vendor, landing = STREAMS[stream]
    out: dict[Key, dict[str, Any]] = {}
    for account in sim_accounts(vendor):
        for raw in sims[vendor.name].truth(account["name"], vendor=vendor.name):
            if not landing.holds(raw):  # a record of the vendor's other stream
                continue
            key, want = expected_rows(stream, account, raw)
            assert key not in out, f"simulator truth repeats {key}"
            out[key] = want
    return out


def identity(stream: str, row: dict[str, Any]) -> Key:
    return tuple(key_part(row[c]) for c in STREAMS[stream][1].identity)


def assert_landed_exactly(
    stream: str,
    rows: Rows,
    expected: dict[Key, dict[str, Any]],
    types: dict[str, str],
    *,
    stored: Callable[[str, Any], Any],
    landed: Callable[[Any], Any],
) -> None:
    """Every expected record exactly once (by primary key and by the vendor's identity),
    nothing else, and every column of every row as the vendor meant it (`types`: the
    table's columns and their types in the loader; `stored(type, vendor value)` is that value
    as the loader stores it in such a column, `landed(fetched value)` a fetched one in the
    same form)."""
    made_by_tap = STREAMS[stream][1].made_by_tap
    pk = by_key(rows, STREAMS[stream][1].key)
    dupes = {k: len(v) for k, v in pk.items() if len(v) > 1}
    assert not dupes, f"{stream}: {len(dupes)} primary keys landed more than once: {list(dupes)[:5]}"
    landed_rows: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = identity(stream, row)
        assert key not in landed_rows, f"{stream}: record {key} landed under two primary keys"
        landed_rows[key] = row
    missing = expected.keys() - landed_rows.keys()
    extra = landed_rows.keys() - expected.keys()
    assert not missing, f"{stream}: {len(missing)} records never landed, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{stream}: {len(extra)} rows not in the simulator's truth: {sorted(extra)[:5]}"
    columns = {c for c in types if not c.startswith("_sdc_")} - made_by_tap
    dropped = {c for want in expected.values() for c in want} - columns
    assert not dropped, f"{stream}: vendor fields with no column: {sorted(dropped)}"
    wrong = []
    for key, want in expected.items():
        row = landed_rows[key]
        for column in sorted(columns):  # a field the vendor left out must land as NULL
            got, value = landed(row[column]), stored(types[column], want.get(column))
            if got != value:
                wrong.append((key, column, got, value))
        for column in made_by_tap:
            if not (isinstance(row[column], str) and row[column]):
                wrong.append((key, column, row[column], "a non-empty text"))
    assert not wrong, f"{stream}: {len(wrong)} wrong values (key, column, landed, expected), e.g. {wrong[:5]}"


@dataclass
class Landing:
    """What the two `meltano run`s landed, and the ground truth before each."""

    schema: str
    sims: dict[str, SimulatorProcess]
    truth1: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    rows1: dict[str, Rows] = field(default_factory=dict)
    truth2: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    rows2: dict[str, Rows] = field(default_factory=dict)
    types: dict[str, dict[str, str]] = field(default_factory=dict)
    states: str = ""


def tap_accounts(sims: dict[str, SimulatorProcess]) -> dict[str, str]:
    """TAP_CALLCDR_<VENDOR>_ACCOUNTS for the simulated accounts, as a user would set them."""
    env = {}
    for vendor in TESTED:
        sim = sims[vendor.name]
        accounts = [
            vendor.e2e_tap_account(a, sim.api_url(vendor.name, a["name"]), sim.ca_file)
            for a in sim_accounts(vendor)
        ]
        env[f"TAP_CALLCDR_{vendor.setting.upper()}"] = json.dumps(accounts, ensure_ascii=False)
    return env


def sim_config(anchor: datetime, *, https: bool) -> dict[str, Any]:
    """One simulator's --config: the accounts of the vendors it serves, an empty list for the
    others (the CLI's default would start generic demo accounts)."""
    accounts = {v.name: sim_accounts(v) if v.https == https else [] for v in TESTED}
    return {**accounts, "anchor": anchor.isoformat()}


def add_new_calls(sims: dict[str, SimulatorProcess]) -> None:
    """New calls 30-90 minutes ago: inside the look-back window of the second run."""
    now = datetime.now(UTC)
    for vendor in TESTED:
        for index, account in enumerate(account_names(vendor)):
            sims[vendor.name].add_calls(
                account,
                5 - 2 * index,  # 5 to the first account, 3 to the second
                start=now - timedelta(minutes=90 - 10 * index),
                end=now - timedelta(minutes=30 + 10 * index),
                vendor=vendor.name,
            )


@contextmanager
def landed_twice(
    launcher: Callable[..., SimulatorProcess],
    work: Path,
    schema: str,
    run: Callable[[dict[str, str]], None],
    fetch: Callable[[], dict[str, Rows]],
    *,
    reread: bool = False,
) -> Iterator[Landing]:
    """Start the simulators (plain HTTP, and HTTPS for the vendors that want it), `run` meltano
    with the tap's settings for them (`run(env)`: TAP_CALLCDR_* to add to the loader's), add new
    calls, run again; `fetch()` reads every stream's table after each run. `reread`: the second
    run looks back to the start date, so it sends every record again (the loader must upsert
    each onto its row, not add one); otherwise it re-reads only its look-back (2 hours before
    the first run's end: no old call is in it, the new calls are)."""
    anchor = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    start_date = anchor - timedelta(days=DAYS + 1)
    started: list[SimulatorProcess] = []
    try:
        http = launcher(work, anchor=anchor, config=sim_config(anchor, https=False))
        started.append(http)
        https = launcher(work, anchor=anchor, https=True, config=sim_config(anchor, https=True))
        started.append(https)
        assert https.base_url.startswith("https://127.0.0.1:"), https.base_url
        sims = {v.name: https if v.https else http for v in TESTED}
        landing = Landing(schema=schema, sims=sims)
        env = {"TAP_CALLCDR_START_DATE": start_date.strftime("%Y-%m-%dT%H:%M:%SZ"), **tap_accounts(sims)}

        # ---- first run: everything the simulators have
        landing.truth1 = {stream: truth(sims, stream) for stream in STREAMS}
        settled = datetime.now(UTC) - timedelta(minutes=10)
        for stream, expected in landing.truth1.items():
            assert expected, f"test setup: the simulator has no {stream} records"
            times = [want[STREAMS[stream][1].replication_key] for want in expected.values()]
            outside = [t for t in times if not start_date <= t <= settled]
            assert not outside, (
                f"test setup: {len(outside)} simulated {stream} calls fall outside "
                f"[{start_date}, {settled}], e.g. {outside[:3]}: does --anchor still mean the "
                "end of the data?"
            )
        run(env)
        landing.rows1 = fetch()

        # ---- second run, after new calls
        add_new_calls(sims)
        landing.truth2 = {stream: truth(sims, stream) for stream in STREAMS}
        if reread:
            env["TAP_CALLCDR_LOOKBACK_MINUTES"] = str((DAYS + 2) * 24 * 60)
        run(env)
        landing.rows2 = fetch()
        yield landing
    finally:
        for sim in started:
            sim.stop()


def check_first_run(landing: Landing, stream: str, landed_exactly: LandedExactly) -> None:
    """Every record of the first run once, every column right, every account there."""
    landed_exactly(stream, landing.rows1[stream], landing.truth1[stream], landing.types[stream])
    accounts = {row["account"] for row in landing.rows1[stream]}
    assert accounts == set(account_names(STREAMS[stream][0]))


def check_second_run(landing: Landing, stream: str, landed_exactly: LandedExactly) -> None:
    """The second run added exactly the new calls and changed no row already there."""
    new_keys = landing.truth2[stream].keys() - landing.truth1[stream].keys()
    assert landing.truth1[stream].keys() <= landing.truth2[stream].keys()
    if not STREAMS[stream][1].gets_added_calls:  # e.g. ITNIO's: the control API adds SIP calls
        assert not new_keys
    else:
        # 5 + 3 calls; a transferred Yeastar call is two CSV rows
        assert len(new_keys) >= 8, f"{stream}: simulator added {len(new_keys)} calls"
    landed_exactly(stream, landing.rows2[stream], landing.truth2[stream], landing.types[stream])

    pk = STREAMS[stream][1].key
    before = {k: without_sdc(v[0]) for k, v in by_key(landing.rows1[stream], pk).items()}
    after = {k: without_sdc(v[0]) for k, v in by_key(landing.rows2[stream], pk).items()}
    added = {identity(stream, after[k]) for k in after.keys() - before.keys()}
    assert added == new_keys
    assert before.keys() <= after.keys()
    changed = [k for k in before if after[k] != before[k]]
    assert not changed, (
        f"{stream}: {len(changed)} existing rows changed on the second run, e.g. "
        f"{[(before[k], after[k]) for k in changed[:2]]}"
    )


def assert_calls_join_their_rows(rows: dict[str, list[dict[str, Any]]], calls: list[dict[str, Any]]) -> None:
    """Each vendor row (held against the simulators' truth) has exactly one `calls` row, joined
    back by source_stream and source_key, started at the vendor row's instant, once per primary
    key; none is left over (docs/calls.md). Rows under the streams' field names."""
    assert len({(c["vendor"], c["account"], c["call_id"]) for c in calls}) == len(calls)
    joined = {(c["source_stream"], c["account"], str(c["source_key"])): c for c in calls}
    assert len(joined) == len(calls), "two calls rows join back to one vendor row"
    for stream, (vendor, landing_of) in STREAMS.items():
        [key] = [column for column in landing_of.key if column != "account"]
        for row in rows[stream]:
            call = joined.pop((stream, row["account"], str(row[key])), None)
            assert call is not None, f"{stream} row {row['account']}/{row[key]} has no calls row"
            assert call["vendor"] == vendor.name
            assert as_utc(call["started_at"]) == as_utc(row[landing_of.replication_key])
    assert not joined, f"calls rows of no vendor row: {list(joined)[:3]}"
