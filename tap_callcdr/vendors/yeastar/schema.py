"""The CDR CSV's columns under their vendor names (misspellings such as `callduraction` kept,
so users can match the vendor's docs), plus `account`, `row_id` and `extra`."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_callcdr.vendors.yeastar.columns import STRING_FIELDS

SCHEMA = th.PropertiesList(
    th.Property("account", th.StringType, required=True, description="Configured account name"),
    th.Property("row_id", th.StringType, required=True,
                description="Hash of the row's documented columns: callid repeats per call leg"),
    th.Property("callid", th.StringType, required=True,
                description="PBX call id, shared by the legs of a transferred call"),
    th.Property("timestart", th.DateTimeType, required=True, description="Call start, UTC"),
    th.Property("callduraction", th.IntegerType, description="Call duration, seconds"),
    th.Property("talkduraction", th.IntegerType, description="Talk duration, seconds"),
    *(th.Property(name, th.StringType) for name in STRING_FIELDS if name != "callid"),
    th.Property("extra", th.ObjectType(additional_properties=th.StringType),
                description="Columns newer firmware added, by their CSV name; null if none"),
).to_dict()  # fmt: skip
