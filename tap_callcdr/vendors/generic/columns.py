"""The fields of GetBill records by kind; no imports, so records.py and a row worker read
them cheaply. One list for both doc versions: v1's `displaynumber` is `disnumber`."""

from __future__ import annotations

INTEGER_FIELDS = (
    "id",
    "callmethod",
    "duration",
    "billsec",
    "hangupdirection",
    "hangupcause",
    "round",
)
TIME_FIELDS = ("starttime", "answertime", "endtime")
STRING_FIELDS = (
    "companycode", "direction", "type", "userid", "memberid", "chengshudu", "ext",
    "disnumber", "destnumber", "extnumber", "recordfilename", "downloadip", "uuid",
    "userkey", "customuuid", "taskid", "recordurl",
)  # fmt: skip
RENAMED = {"displaynumber": "disnumber"}  # v1 name -> column
