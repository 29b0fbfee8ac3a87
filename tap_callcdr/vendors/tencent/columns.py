"""The fields of getCdr records by kind (besides `callId`); no imports, so records.py and a
row worker read them cheaply."""

from __future__ import annotations

TIME_FIELDS = (
    "startSrcCallTime", "startSrcRingTime", "srcAcceptTime", "startDstCallTime",
    "startDstRingTime", "dstAcceptTime", "endCallTime",
)  # fmt: skip
INTEGER_FIELDS = ("callEndStatus", "duration", "callType")
STRING_FIELDS = ("src", "dst", "recordUrl", "bizId", "orderId")
