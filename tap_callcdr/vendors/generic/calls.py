"""GetBill records in the unified `calls` shape (core/calls.py; docs/calls.md has the table).

Both doc versions land in one record (v1's `displaynumber` is `disnumber`, and v1 has no
`uuid` or `recordurl`), so one mapping serves both. Imports no SDK: it runs per record.

The choices where the docs leave room (docs/calls.md says why):
- status: the docs list no `hangupcause` codes (their only example, 10020, is on an
  unanswered call), so a call is `answered` when it has an answer time or billed seconds,
  and `no_answer` otherwise; the cause is kept, as sent, in `vendor_status`.
- direction: `callin`/`callout` (the request's 1 呼入 / 2 呼出); callmethod 1 (分机互拨,
  extension to extension) is `internal` whichever side the record was written from.
- durations: from the instants, which are unambiguous (the docs call `duration` "呼叫等待时长",
  yet their examples have it equal endtime - starttime); a missing end is start + duration,
  a missing answer is end - billsec.
"""

from __future__ import annotations

import typing as t

from tap_callcdr.core.times import seconds_between, shifted

DIRECTIONS = {"callin": "inbound", "callout": "outbound"}
INTERNAL_METHOD = 1  # callmethod 1: 分机互拨, one extension calling another
NOT_GIVEN = ("", "0")  # custom data (userid) the caller did not set: the docs' examples say "0"


def to_call(stream: str, record: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One generic_cdr record as a unified call."""
    key = str(record["id"])
    started, answered, ended = record["starttime"], record.get("answertime"), record.get("endtime")
    duration, billsec = record.get("duration"), record.get("billsec")
    if ended is None and duration is not None:
        ended = shifted(started, duration)
    if answered is None and billsec and ended is not None:
        answered = shifted(ended, -billsec)
    direction = direction_of(record.get("direction"), record.get("callmethod"))
    caller, callee = record.get("disnumber") or None, record.get("destnumber") or None
    cause = record.get("hangupcause")
    agent = record.get("userid")
    return {
        "call_id": key,
        "source_key": key,
        "vendor_call_id": record.get("uuid") or None,
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": seconds_between(started, ended) if ended is not None else duration,
        "talk_seconds": seconds_between(answered, ended) if answered and ended else billsec or 0,
        "direction": direction,
        "caller": caller,
        "callee": callee,
        "status": "answered" if answered is not None else "no_answer",
        "vendor_status": None if cause is None else str(cause),
        "extension": record.get("extnumber") or None,
        "agent": None if agent in NOT_GIVEN else agent,
        # the company's line: the number shown to the customer on the way out, dialled on the way in
        "trunk": caller if direction == "outbound" else callee if direction == "inbound" else None,
        "recording": record.get("recordurl") or record.get("recordfilename") or None,
        "cost": None,
        "currency": None,
    }


def direction_of(word: str | None, callmethod: int | None) -> str:
    if callmethod == INTERNAL_METHOD:
        return "internal"
    return DIRECTIONS.get(word or "", "unknown")
