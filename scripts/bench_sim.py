#!/usr/bin/env python
"""`callcdr-simulator` for scripts/benchmark.py: the same CLI, with one speed-up for big data.

The stock ITNIO simulator (`ItnioVendor._page`) scans *every* call of the account for every
page request: 60 ms per page at 200k calls, 0.3 s at 1M, so a 1M-record ITNIO run would take
the simulator hours and any tap/floor comparison would only measure the simulator. Here an
unfiltered query (no sipGroupName/phoneName, what the tap sends) is answered from a bisected
slice of the (already time-sorted) call list instead. The answer is the same: the first such
page per account and endpoint is also computed the stock way and compared; on any difference
the stock code is used from then on (and stderr says so). Filtered queries use the stock code.

    python scripts/bench_sim.py [callcdr-simulator options]
    python scripts/bench_sim.py --stock [options]      # no speed-up at all
"""

from __future__ import annotations

import bisect
import sys
import typing as t

from tap_callcdr.simulator import cli
from tap_callcdr.simulator.itnio import ItnioVendor

STOCK_PAGE = ItnioVendor._page
_checked: dict[tuple[int, str], bool] = {}  # (account state id, endpoint) -> fast path agrees
_keys: dict[tuple[int, str], tuple[int, list[t.Any]]] = {}  # -> (id of calls list, call times)


def _call_times(state: t.Any, endpoint: str) -> list[t.Any]:
    calls = state.calls[endpoint]
    key = (id(state), endpoint)
    cached = _keys.get(key)
    if cached is None or cached[0] != id(calls) or len(cached[1]) != len(calls):
        cached = (id(calls), [c.call_time for c in calls])  # append() builds a new sorted list
        _keys[key] = cached
    return cached[1]


def fast_page(self: ItnioVendor, state: t.Any, endpoint: str, query: t.Any, fault: str | None) -> dict:
    key = (id(state), endpoint)
    if query.sip_group or query.phone or fault == "repeat_page" or _checked.get(key) is False:
        return STOCK_PAGE(self, state, endpoint, query, fault)
    with self._lock:
        calls = state.calls[endpoint]
        times = _call_times(state, endpoint)
        low = bisect.bisect_left(times, query.start)
        high = bisect.bisect_right(times, query.end)
        total = high - low
        first = (query.current - 1) * query.size  # pages run newest first, like the stock code
        top = high - first
        bottom = max(low, top - query.size)
        records = [dict(calls[i].record) for i in range(top - 1, bottom - 1, -1)] if top > low else []
    answer = {
        "total": total,
        "size": query.size,
        "current": query.current,
        "pages": -(-total // query.size),
        "searchCount": True,
        "records": records,
    }
    if key not in _checked:
        _checked[key] = answer == STOCK_PAGE(self, state, endpoint, query, fault)
        if not _checked[key]:
            print("bench_sim: fast ITNIO paging disagrees with the stock simulator; using the stock "
                  "code from now on (slow)", file=sys.stderr, flush=True)  # fmt: skip
            return STOCK_PAGE(self, state, endpoint, query, fault)
    return answer


def main() -> int:
    argv = sys.argv[1:]
    if "--stock" in argv:
        argv.remove("--stock")
    else:
        ItnioVendor._page = fast_page  # type: ignore[method-assign]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
