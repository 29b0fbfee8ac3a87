"""Record shapes of `recordSipQuery` and `recordGroupQuery` (the latter adds four fields).

Money (`cost`, `rate`, `baseCost`) is a JSON number emitted from a Decimal built from the
vendor's string, so every digit survives: the SDK writes Decimals verbatim and SDK targets
read numbers back as Decimals (target-postgres: NUMERIC). A float would round them.
Loaders that make every number a float (target-snowflake: FLOAT, target-duckdb: DOUBLE) get
them exact with use_singer_decimal (`singer_decimal_schema`).
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_callcdr.vendors.itnio.columns import (
    GROUP_DECIMAL_FIELDS,
    GROUP_STRING_FIELDS,
    INTEGER_FIELDS,
    MONEY_PRECISION,
    MONEY_SCALE,
    SIP_DECIMAL_FIELDS,
    SIP_STRING_FIELDS,
    TIME_FIELDS,
)

DESCRIPTIONS = {
    "voiceId": "Vendor record id",
    "callTime": "Call time, UTC",
    "submitTime": "Submission time, UTC",
    "ringingTime": "Ringing time, UTC; null if it never rang",
    "answerTime": "Answer time, UTC; null if unanswered",
    "hangupTime": "Hang-up time, UTC",
    "callDuration": "Talk time in seconds",
    "chargedDuration": "Billed seconds",
    "cost": "Charge in the quote currency (exact decimal)",
    "rate": "Rate in the quote currency (exact decimal)",
    "baseCost": "Base charge in the quote currency (exact decimal)",
    "terminationCode": "Vendor's termination code, as sent",
    "currency": "Quote currency (EUR/USD); empty when USD",
}


def schema(strings: tuple[str, ...], decimals: tuple[str, ...]) -> dict:
    def prop(name: str, kind: type[th.JSONTypeHelper]) -> th.Property:
        required = name in ("voiceId", "callTime")
        return th.Property(name, kind, required=required, description=DESCRIPTIONS.get(name))

    return th.PropertiesList(
        th.Property("account", th.StringType, required=True, description="Configured account"),
        *(prop(name, th.StringType) for name in strings),
        *(prop(name, th.DateTimeType) for name in TIME_FIELDS),
        *(prop(name, th.IntegerType) for name in INTEGER_FIELDS),
        *(prop(name, th.DecimalType) for name in decimals),
    ).to_dict()


SIP_SCHEMA = schema(SIP_STRING_FIELDS, SIP_DECIMAL_FIELDS)
GROUP_SCHEMA = schema(GROUP_STRING_FIELDS, GROUP_DECIMAL_FIELDS)


def singer_decimal_schema(schema: dict, decimals: tuple[str, ...]) -> dict:
    """`schema` with money as `x-singer.decimal` text (the SDK's use_singer_decimal form),
    which SDK loaders make DECIMAL(precision, scale): target-postgres NUMERIC(38,18),
    target-snowflake NUMBER(38,18). Nullable ["string", "null"] takes the same path as
    "string" there (JSONSchemaToSQL's string handler reads the format)."""
    money = {"type": ["string", "null"], "format": "x-singer.decimal",
             "precision": MONEY_PRECISION, "scale": MONEY_SCALE}  # fmt: skip
    properties = {
        name: {**prop, **money} if name in decimals else prop for name, prop in schema["properties"].items()
    }
    return {**schema, "properties": properties}
