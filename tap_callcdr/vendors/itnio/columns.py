"""The fields of ITNIO records by kind; no imports, so the row worker (itnio/worker.py)
reads them cheaply."""

from __future__ import annotations

TIME_FIELDS = ("submitTime", "callTime", "ringingTime", "answerTime", "hangupTime")
INTEGER_FIELDS = ("callDuration", "chargedDuration")
SIP_DECIMAL_FIELDS = ("cost", "rate")
SIP_STRING_FIELDS = (
    "voiceId", "sipGroupName", "phoneName", "callee", "displayNum", "code", "terminationCode",
    "terminationReason", "billPeriod", "recordingFileId", "currency",
)  # fmt: skip
GROUP_DECIMAL_FIELDS = (*SIP_DECIMAL_FIELDS, "baseCost")
GROUP_STRING_FIELDS = (*SIP_STRING_FIELDS, "voiceFileId", "feedbackValue", "calledInfo")
