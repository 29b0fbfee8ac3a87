"""A yeastar_cdr record as a unified call (core/calls.py; the table in docs/calls.md).

The CDR file's codes are those of Yeastar's published CDR (`NewCdr`) parameters: `status`
ANSWERED / NO ANSWER / BUSY / VOICEMAIL, plus FAILED (the Asterisk disposition the S-Series
CDR also shows), and `type` Inbound / Outbound / Internal. Spellings the published pages use
(ANSWERD, NO ANSWERED, P-Series' lower case) map too; any other value is `unknown`, the raw
text kept in `vendor_status`.

A row gives its start (`timestart`), the whole call's seconds (`callduraction`, ringing
included) and the talk's (`talkduraction`): the call ended `callduraction` after its start,
and was answered `talkduraction` before its end. Each row is one leg: the legs of a
transferred call share `callid` (`vendor_call_id`) and `call_id` is the row's `row_id`.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from tap_callcdr.core.times import shifted

STREAM = "yeastar_cdr"


def _spellings(table: dict[str, str]) -> dict[str, str]:
    """The table under each code as written, in upper, lower and title case: one dict
    lookup a record, no string work."""
    return {form: value for code, value in table.items()
            for form in (code, code.upper(), code.lower(), code.title())}  # fmt: skip


STATUSES = _spellings({
    "ANSWERED": "answered",
    "ANSWERD": "answered",  # the Chinese NewCdr page's spelling
    "NO ANSWER": "no_answer",
    "NO ANSWERED": "no_answer",  # the English v2 NewCdr page's spelling
    "BUSY": "busy",
    "VOICEMAIL": "no_answer",  # the callee did not answer; the caller left a voicemail
    "FAILED": "failed",
})  # fmt: skip
DIRECTIONS = _spellings({"Inbound": "inbound", "Outbound": "outbound", "Internal": "internal"})
NOT_ANSWERED = frozenset({"no_answer", "busy", "failed"})


def to_call(stream: str, record: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One emitted yeastar_cdr record as a call (every key of calls.MAPPED_FIELDS)."""
    if stream != STREAM:
        raise ValueError(f"yeastar has no stream {stream!r}")
    raw_status, raw_type = record["status"], record["type"]
    status = STATUSES.get(raw_status, "unknown") if raw_status else "unknown"
    direction = DIRECTIONS.get(raw_type, "unknown") if raw_type else "unknown"
    started, total, talk = record["timestart"], record["callduraction"], record["talkduraction"]
    ended = None if total is None else shifted(started, total)
    if status in NOT_ANSWERED:  # the callee never spoke, whatever a talk figure says
        talk = 0
    answered = answer_time(ended, talk, status)
    caller, callee = record["callfrom"] or None, record["callto"] or None
    return {
        "call_id": record["row_id"],
        "source_key": record["row_id"],
        "vendor_call_id": record["callid"],
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": total,
        "talk_seconds": talk,
        "direction": direction,
        "caller": caller,
        "callee": callee,
        "status": status,
        "vendor_status": raw_status or None,
        # the PBX's side of the call: who took an inbound call, who placed the others
        "extension": callee if direction == "inbound" else caller if direction != "unknown" else None,
        "agent": None,
        "trunk": record["srctrunkname"] or record["dsttrunkname"] or None,
        "recording": record["recording"] or None,
        "cost": None,
        "currency": None,
    }


def answer_time(ended: str | None, talk: int | None, status: str) -> str | None:
    """`talk` seconds before the end; None without those figures, or when no talk and no
    ANSWERED say that anybody answered."""
    if ended is None or talk is None or (not talk and status != "answered"):
        return None
    return shifted(ended, -talk)
