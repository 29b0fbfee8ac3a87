"""The CDR CSV's documented columns (vendor names, misspellings such as `callduraction`
kept); no imports, so the row worker (worker.py) can read them cheaply."""

from __future__ import annotations

CSV_COLUMNS = (
    "callid", "timestart", "callfrom", "callto", "callduraction", "talkduraction",
    "srctrunkname", "dsttrunkname", "status", "type", "pincode", "recording", "didnumber", "sn",
)  # fmt: skip
REQUIRED_COLUMNS = ("callid", "timestart")  # without them a row has no identity or time
INTEGER_FIELDS = ("callduraction", "talkduraction")
STRING_FIELDS = tuple(c for c in CSV_COLUMNS if c not in (*INTEGER_FIELDS, "timestart"))
