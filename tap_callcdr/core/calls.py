"""The unified `calls` record: one shape for every vendor's calls (docs/calls.md).

The contract between the core and the vendors. Each vendor package's `calls.py` has
`to_call(stream, record)`: one record of its stream `stream`, exactly as the tap emits it
(typed: UTC instants as ISO text, integers, exact decimals, text as sent), to a dict holding
every key of MAPPED_FIELDS. The core adds CORE_FIELDS and emits the `calls` stream.
"""

from __future__ import annotations

DIRECTIONS = ("inbound", "outbound", "internal", "unknown")
STATUSES = ("answered", "no_answer", "busy", "failed", "unknown")

# Added by the core to every mapped call: which vendor, account and stream it came from.
CORE_FIELDS = ("vendor", "account", "source_stream")

# What a vendor's `to_call` returns (None where the vendor has no such value):
MAPPED_FIELDS = (
    "call_id",         # text, unique per (vendor, account): with them the primary key
    "source_key",      # text: the source stream's key besides `account`, to join back to the raw row
    "vendor_call_id",  # text: the vendor's own call id (Yeastar's transferred legs share one)
    "started_at",      # UTC instant (ISO text, as the vendor streams emit them)
    "answered_at",     # UTC instant or None (never answered, or the vendor does not say)
    "ended_at",        # UTC instant or None
    "duration_seconds",  # integer: start to end
    "talk_seconds",    # integer: answer to end (0 when not answered)
    "direction",       # one of DIRECTIONS
    "caller",          # text: the calling number
    "callee",          # text: the called number
    "status",          # one of STATUSES; a code the vendor's docs do not list is "unknown"
    "vendor_status",   # text: the vendor's own status word or code, as sent
    "extension",       # text: the PBX extension involved
    "agent",           # text: the call-center agent (id or name as the vendor gives it)
    "trunk",           # text: the trunk or line
    "recording",       # text: a recording file name or URL
    "cost",            # exact decimal, as the vendor stream emits its money
    "currency",        # text: ISO 4217 code where the vendor says it
)  # fmt: skip

PRIMARY_KEYS = ("vendor", "account", "call_id")
