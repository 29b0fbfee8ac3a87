"""getCdr records in the unified `calls` shape (core/calls.py; docs/calls.md has the table).

A callback call has two legs: the platform calls the caller (`src`), then, once the caller
answers, the callee (`dst`), and bridges them. The unified call starts when the platform
starts calling the caller (`startSrcCallTime`), is answered when the callee answers
(`dstAcceptTime`: the conversation starts) and ends at `endCallTime`; the durations are
those instants' differences (the vendor's `duration` is billed time, which billing may
round). Imports no SDK: it runs per record.
"""

from __future__ import annotations

import typing as t

from tap_callcdr.core.times import seconds_between, shifted

# callEndStatus, as the doc lists it: 0 未知状态, 1 正常通话, 2 主叫未接, 3 主叫接听,被叫未接,
# 4 主叫未接通, 5 被叫未接通. "未接" (did not pick up) is no_answer; "未接通" (could not be
# connected: unreachable, switched off, rejected by the network) is failed.
END_STATUSES = {0: "unknown", 1: "answered", 2: "no_answer", 3: "no_answer", 4: "failed", 5: "failed"}
# callType 1 VOIP, 2 IP TO PSTN, 3 PSTN TO PSTN (records.py fills in 3 where it is absent):
# each is a callback the caller asked for, so outbound; any other type is unknown.
CALL_TYPES = frozenset({1, 2, 3})


def to_call(stream: str, record: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One tencent_cdr record as a unified call."""
    call_id = record["callId"]
    started, ended = record["startSrcCallTime"], record.get("endCallTime")
    answered = record.get("dstAcceptTime")
    billed = record.get("duration")
    if answered is None and billed and ended is not None:
        answered = shifted(ended, -billed)
    code = record.get("callEndStatus")
    return {
        "call_id": call_id,
        "source_key": call_id,
        "vendor_call_id": call_id,
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": seconds_between(started, ended) if ended is not None else None,
        "talk_seconds": seconds_between(answered, ended) if answered and ended else billed or 0,
        "direction": "outbound" if record.get("callType") in CALL_TYPES else "unknown",
        "caller": record.get("src") or None,
        "callee": record.get("dst") or None,
        "status": END_STATUSES.get(code, "unknown"),  # type: ignore[arg-type]
        "vendor_status": None if code is None else str(code),
        "extension": None,
        "agent": None,
        "trunk": None,
        "recording": record.get("recordUrl") or None,
        "cost": None,
        "currency": None,
    }
