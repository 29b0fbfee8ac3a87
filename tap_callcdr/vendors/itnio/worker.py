"""The ITNIO task of a row worker (tap_callcdr/fastpath/worker.py): one answer's page of records.

    task "tap_callcdr.vendors.itnio.worker:convert_page"

Does what the tap does with a page it converts itself (stream.records_in_window, then
post_process and the conformance check): rows at or after the window's end are left to the
next window, each row becomes a record (records.py), and the record's JSON is written as
the SDK's encoder writes it. Anything unusual (a value that does not convert, a record the
conformance would change) is a Fallback: the tap converts that page itself.
"""

from __future__ import annotations

import typing as t
from zoneinfo import ZoneInfo

from tap_callcdr.fastpath.jsonbody import EXACT
from tap_callcdr.fastpath.worker import line_encoder
from tap_callcdr.vendors.itnio.records import build_record, converters, in_window


def convert_page(job: dict[str, t.Any]) -> tuple[int, bytes]:
    """The records of the answer in job["payload"]: their count and JSON lines."""
    rows = EXACT.decode(job["payload"])["data"]["records"]
    zone, money_as_text = ZoneInfo(job["zone"]), job["money_as_text"]
    convert = converters(zone, tuple(job["strings"]), tuple(job["decimals"]), money_as_text)
    utc, sent, end, account = convert["callTime"], job["sent"], job["end"], job["account"]
    encode = line_encoder(job)
    lines = [encode(build_record(row, account, convert)) for row in rows if in_window(row, utc, sent, end)]
    return len(lines), b"".join(line + b"\n" for line in lines)
