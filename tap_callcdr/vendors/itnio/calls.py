"""An itnio_sip_cdr or itnio_group_cdr record as a unified call (core/calls.py; the table
in docs/calls.md).

ITNIO's doc (recordSipQuery) says of `terminationCode`: "0 success, any other a failure",
and its example's successful call carries "1000" with the reason "success": both are
answered. Any other code is, per the doc, a failure: `failed`, or `no_answer` / `busy` when
its `terminationReason` (the doc: the code's description) says exactly that. A code that is
not a number, or none, is `unknown`. `vendor_status` is the code as sent.

The doc gives every instant (`callTime` when the call was placed, `answerTime`,
`hangupTime`) and the talk's seconds (`callDuration`): the call lasted from `callTime` to
`hangupTime`. Both streams are calls the API placed (SIP phones dialling out, group calls):
`outbound`. `voiceId` is unique within a stream; `call_id` is it behind the stream's prefix
(`sip:`, `group:`) so that the two streams' ids never meet.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from tap_callcdr.core.times import seconds_between

PREFIXES = {"itnio_sip_cdr": "sip:", "itnio_group_cdr": "group:"}
ANSWERED_CODES = frozenset({"0", "1000"})  # the doc's table; its example
FAILURE_REASONS = {"no answer": "no_answer", "busy": "busy"}  # else a failure is `failed`
QUOTE_CURRENCY = "USD"  # the doc: `currency` is set only when the quote currency is not USD


def status_of(code: str | None, reason: str | None) -> str:
    """The unified status of a terminationCode and its terminationReason."""
    if code in ANSWERED_CODES:
        return "answered"
    if not code or not code.lstrip("-").isdigit():
        return "unknown"
    return FAILURE_REASONS.get(reason.strip().lower(), "failed") if reason else "failed"


def to_call(stream: str, record: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One emitted record of `stream` as a call (every key of calls.MAPPED_FIELDS)."""
    prefix = PREFIXES.get(stream)
    if prefix is None:
        raise ValueError(f"itnio has no stream {stream!r}")
    voice_id, started, ended = record["voiceId"], record["callTime"], record["hangupTime"]
    duration = None if ended is None else seconds_between(started, ended)
    answered, talk, cost = record["answerTime"], record["callDuration"], record["cost"]
    code = record["terminationCode"]
    return {
        "call_id": prefix + voice_id,
        "source_key": voice_id,
        "vendor_call_id": voice_id,
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        # a hang-up before the call (the doc's own example has one) gives no duration
        "duration_seconds": duration if duration is None or duration >= 0 else None,
        "talk_seconds": talk if talk is not None or answered is not None else 0,
        "direction": "outbound",
        "caller": record["displayNum"] or None,
        "callee": record["callee"] or None,
        "status": status_of(code, record["terminationReason"]),
        "vendor_status": code or None,
        "extension": record["phoneName"] or None,  # the SIP phone (empty for group calls)
        "agent": None,
        "trunk": None,
        "recording": record["recordingFileId"] or None,
        "cost": cost,
        "currency": record["currency"] or (None if cost is None else QUOTE_CURRENCY),
    }
