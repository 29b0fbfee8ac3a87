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

# Money as `x-singer.decimal` text (setting use_singer_decimal): the NUMBER/DECIMAL(38, 18) a
# loader makes of it. 38 digits is the most Snowflake and DuckDB hold; 18 decimals are far
# more than the vendor's (its doc: "1.2", "2"; rates and costs carry 4 to 6), and 20 whole
# digits more than any charge. A value that would not fit is refused, never rounded.
MONEY_PRECISION = 38
MONEY_SCALE = 18
