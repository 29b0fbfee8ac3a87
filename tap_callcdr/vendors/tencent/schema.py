"""The vendor's fields, typed: UTC times, integer codes and seconds, numbers kept as sent."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_callcdr.vendors.tencent.columns import INTEGER_FIELDS, STRING_FIELDS, TIME_FIELDS

DESCRIPTIONS = {
    "startSrcCallTime": "Caller leg: the platform starts calling the caller, UTC",
    "startSrcRingTime": "Caller leg: the caller's phone rings, UTC; null if it never rang",
    "srcAcceptTime": "Caller leg: the caller answers, UTC; null if not",
    "startDstCallTime": "Callee leg: the platform starts calling the callee, UTC; null if not",
    "startDstRingTime": "Callee leg: the callee's phone rings, UTC; null if it never rang",
    "dstAcceptTime": "Callee leg: the callee answers, UTC; null if not",
    "endCallTime": "Hang-up, UTC",
    "callEndStatus": "0 unknown, 1 normal call, 2 caller did not answer, 3 caller answered and "
    "callee did not, 4 caller not reached, 5 callee not reached",
    "duration": "Billed seconds",
    "callType": "1 VoIP, 2 IP to PSTN, 3 PSTN to PSTN (Tencent omits it for 3)",
    "src": "Caller number as Tencent sent it (e.g. 0086…)",
    "dst": "Callee number as Tencent sent it",
    "recordUrl": "Recording URL; empty if not recorded or the recording failed",
    "bizId": "bizId of the callback request, if it had one",
    "orderId": "Order id, for apps with orders",
}

SCHEMA = th.PropertiesList(
    th.Property("account", th.StringType, required=True, description="Configured account name"),
    th.Property("callId", th.StringType, required=True, description="Tencent's call id"),
    *(
        th.Property(name, th.DateTimeType, required=name == "startSrcCallTime",
                    description=DESCRIPTIONS[name])
        for name in TIME_FIELDS
    ),
    *(th.Property(name, th.IntegerType, description=DESCRIPTIONS[name]) for name in INTEGER_FIELDS),
    *(th.Property(name, th.StringType, description=DESCRIPTIONS[name]) for name in STRING_FIELDS),
).to_dict()  # fmt: skip
