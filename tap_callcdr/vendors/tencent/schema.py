"""The vendor's fields, typed: UTC times, integer codes and seconds, numbers kept as sent."""

from __future__ import annotations

from singer_sdk import typing as th

TIME_FIELDS = {
    "startSrcCallTime": "Caller leg: the platform starts calling the caller, UTC",
    "startSrcRingTime": "Caller leg: the caller's phone rings, UTC; null if it never rang",
    "srcAcceptTime": "Caller leg: the caller answers, UTC; null if not",
    "startDstCallTime": "Callee leg: the platform starts calling the callee, UTC; null if not",
    "startDstRingTime": "Callee leg: the callee's phone rings, UTC; null if it never rang",
    "dstAcceptTime": "Callee leg: the callee answers, UTC; null if not",
    "endCallTime": "Hang-up, UTC",
}
INTEGER_FIELDS = {
    "callEndStatus": "0 unknown, 1 normal call, 2 caller did not answer, 3 caller answered and "
    "callee did not, 4 caller not reached, 5 callee not reached",
    "duration": "Billed seconds",
    "callType": "1 VoIP, 2 IP to PSTN, 3 PSTN to PSTN (Tencent omits it for 3)",
}
STRING_FIELDS = {
    "src": "Caller number as Tencent sent it (e.g. 0086…)",
    "dst": "Callee number as Tencent sent it",
    "recordUrl": "Recording URL; empty if not recorded or the recording failed",
    "bizId": "bizId of the callback request, if it had one",
    "orderId": "Order id, for apps with orders",
}
DEFAULT_CALL_TYPE = 3  # the doc: a record without callType is a callback, type 3

SCHEMA = th.PropertiesList(
    th.Property("account", th.StringType, required=True, description="Configured account name"),
    th.Property("callId", th.StringType, required=True, description="Tencent's call id"),
    *(
        th.Property(name, th.DateTimeType, required=name == "startSrcCallTime", description=text)
        for name, text in TIME_FIELDS.items()
    ),
    *(th.Property(name, th.IntegerType, description=text) for name, text in INTEGER_FIELDS.items()),
    *(th.Property(name, th.StringType, description=text) for name, text in STRING_FIELDS.items()),
).to_dict()
