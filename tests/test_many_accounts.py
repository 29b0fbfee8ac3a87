"""Many accounts in one run (docs/scale.md): the STATE output grows with the windows read,
not with their square. A STATE lists every account read so far; one after every window made
a run of n accounts write O(n²) of it (1,000 accounts: most of the tap's CPU)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math

from callcdr_simulator import Simulator
from callcdr_simulator.generic import demo_accounts
from generic_helpers import STREAM, expected, tap_config
from harness import assert_matches_truth, run_tap
from test_output_paths import assert_states_follow_what_they_cover

from tap_callcdr.core.stream import STATE_ACCOUNTS_PER_WINDOW
from tap_callcdr.tap import TapCallCDR

ANCHOR = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
ACCOUNTS, DAYS = 48, 3  # 4 windows of 24 h each (the last one up to now)


def test_state_output_is_linear_in_windows_and_follows_its_records() -> None:
    names = [f"pbx{i}" for i in range(ACCOUNTS)]
    with Simulator(demo_accounts(names, calls=20, days=DAYS), anchor=ANCHOR) as sim:
        run = run_tap(tap_config(sim, days=DAYS, window_hours=24, parallel_accounts=8))
        assert_matches_truth(run.records(STREAM), expected(sim), "id")
    assert_states_follow_what_they_cover(run)
    final = run.states[-1]["bookmarks"][STREAM]["partitions"]
    assert sorted(p["context"]["account"] for p in final) == sorted(names)
    assert all(p["replication_key_value"] for p in final)
    read = dt.datetime.now(dt.UTC) - (ANCHOR - dt.timedelta(days=DAYS))
    windows = ACCOUNTS * math.ceil(read / dt.timedelta(days=1))
    listed = sum(len(state["bookmarks"][STREAM].get("partitions", [])) for state in run.states)
    # per window read, at most this many accounts listed on average, plus the final STATE
    assert listed <= (STATE_ACCOUNTS_PER_WINDOW + 1) * windows + ACCOUNTS, (listed, windows)


def test_an_account_read_to_the_end_lets_its_connections_go() -> None:
    """Each account has its own keep-alive session: kept open to the run's end, 1,000 accounts
    held 2,000 sockets (past the usual limit of 1,024 open files)."""
    names = ["hq", "branch", "depot"]
    with Simulator(demo_accounts(names, calls=20, days=1), anchor=ANCHOR) as sim:
        tap = TapCallCDR(config=tap_config(sim, days=1), validate_config=True)
        with contextlib.redirect_stdout(io.StringIO()):
            tap.sync_all()
    accounts = tap.streams[STREAM].opened_accounts  # type: ignore[attr-defined]
    assert sorted(account.name for account in accounts) == sorted(names)
    pools = {a.name: [len(http.poolmanager.pools) for http in a.session.adapters.values()] for a in accounts}
    assert not any(map(any, pools.values())), pools
