"""One schema for both doc versions (v1 `displaynumber` lands in `disnumber`)."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_callcdr.vendors.generic.columns import INTEGER_FIELDS, STRING_FIELDS

SCHEMA = th.PropertiesList(
    th.Property("account", th.StringType, required=True, description="Configured account name"),
    th.Property("id", th.IntegerType, required=True, description="Vendor record id"),
    th.Property("starttime", th.DateTimeType, required=True, description="Call start, UTC"),
    th.Property("answertime", th.DateTimeType, description="Answer time, UTC; null if unanswered"),
    th.Property("endtime", th.DateTimeType, description="Call end, UTC"),
    *(th.Property(name, th.IntegerType) for name in INTEGER_FIELDS if name != "id"),
    *(th.Property(name, th.StringType) for name in STRING_FIELDS),
).to_dict()
