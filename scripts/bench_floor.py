#!/usr/bin/env python
"""The bare floor for scripts/benchmark.py: one account of one stream, the same requests the
vendor protocol needs (and the tap makes), and nothing else.

Per vendor: login / signing, the same windows (start, size, up to now) and pages as the tap,
Tencent's zlib answers and window halving on a cut answer, Yeastar's random + CSV download.
Each record is parsed (msgspec JSON, or the csv module for Yeastar) and written as a Singer
RECORD line with msgspec to stdout; no validation, no type conversion, no state. HTTP is
`requests` (what the SDK uses). Prints `records requests splits` on stderr's last line.

    python scripts/bench_floor.py SPEC.json > /dev/null

SPEC: {"stream", "url" (the simulator), "account": {...}, "start" (ISO), "window_seconds",
       "ca_file" (Yeastar)}; benchmark.py writes it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sys
import time
import typing as t
import zlib
from zoneinfo import ZoneInfo

import msgspec
import requests

PBX_TIME = "%Y-%m-%d %H:%M:%S"
ENCODE = msgspec.json.Encoder().encode
DECODE = msgspec.json.decode


class Floor:
    def __init__(self, spec: dict[str, t.Any]) -> None:
        self.spec = spec
        self.stream = spec["stream"]
        self.account = spec["account"]
        self.zone = ZoneInfo(self.account.get("timezone") or "Asia/Shanghai")
        self.session = requests.Session()
        self.out = sys.stdout.buffer
        self.records = self.requests = self.splits = 0

    def windows(self) -> t.Iterator[tuple[dt.datetime, dt.datetime]]:
        start = dt.datetime.fromisoformat(self.spec["start"]).replace(microsecond=0)
        stop = dt.datetime.now(dt.UTC).replace(microsecond=0)
        size = dt.timedelta(seconds=self.spec["window_seconds"])
        while start < stop:
            end = min(start + size, stop)
            yield start, end
            start = end

    def emit(self, rows: t.Iterable[t.Any]) -> None:
        stream, lines = self.stream, []
        for row in rows:
            lines.append(ENCODE({"type": "RECORD", "stream": stream, "record": row}))
            if len(lines) == 1000:
                self._write(lines)
                lines = []
        self._write(lines)

    def _write(self, lines: list[bytes]) -> None:
        if lines:
            self.out.write(b"\n".join(lines) + b"\n")
            self.records += len(lines)

    def local(self, moment: dt.datetime) -> str:
        return moment.astimezone(self.zone).strftime(PBX_TIME)

    # -- generic: login, then GetBill pages of 1000 -------------------------------------------

    def generic(self) -> None:
        url, acct = self.account["api_url"], self.account
        login = {"service": "App.Sip_Auth.Login", "appid": acct["appid"], "accesskey": acct["accesskey"]}
        token = DECODE(self.post(url, data=login).content)["data"]["result"]["token"]
        for start, end in self.windows():
            page = 1
            while True:
                form = {
                    "service": "App.Sip_Cdr.GetBill", "token": token,
                    "starttime": self.local(start),
                    "endtime": self.local(end - dt.timedelta(seconds=1)),
                    "syncflag": 3, "direction": 3, "callmethod": 0,
                    "currentpage": page, "itemsperpage": 1000,
                    "extnumber": "", "destnumber": "", "userid": "", "memberid": "",
                }  # fmt: skip
                result = DECODE(self.post(url, data=form).content)["data"]["result"]
                bills = result["bills"]
                self.emit(bills)
                if not bills or page * 1000 >= int(result["totalitems"]):
                    break
                page += 1

    # -- tencent: one zlib answer per window; a cut answer is dropped and the window halved ----

    def tencent(self) -> None:
        acct = self.account
        url = acct["api_url"].rstrip("/") + "/201511v3/getCdr"
        for window in self.windows():
            todo = [window]
            while todo:
                start, end = todo.pop()
                body = {
                    "src": "", "startTimeStamp": str(int(start.timestamp())),
                    "endTimeStamp": str(int(end.timestamp())), "compress": "1",
                    "appId": acct["app_id"],
                }  # fmt: skip
                content = self.post(url, params={"id": acct["id"]}, data=ENCODE(body)).content
                answer = DECODE(content if content[:1] == b"{" else zlib.decompress(content))
                if answer["errorCode"] != "0":
                    raise SystemExit(f"tencent error {answer}")
                if answer["offset"] != "0":
                    self.splits += 1
                    middle = start + dt.timedelta(seconds=int((end - start).total_seconds()) // 2)
                    todo += [(middle, end), (start, middle)]  # oldest half first
                    continue
                limit = int(end.timestamp())
                self.emit(r for r in answer["cdr"] if int(r["startSrcCallTime"]) < limit)

    # -- itnio: signed JSON POSTs, pages of 100 up to `pages` ----------------------------------

    def itnio(self, endpoint: str) -> None:
        acct = self.account
        url = acct["api_url"].rstrip("/") + "/" + endpoint
        key, secret = acct["api_key"], acct["api_secret"]
        beyond: set[str] = set()  # emitted at the previous window's inclusive end
        for start, end in self.windows():
            end_text = end.astimezone(self.zone).isoformat(timespec="seconds")
            params = {
                "strTime": start.astimezone(self.zone).isoformat(timespec="seconds"),
                "endTime": end_text,
                **({"sipGroupName": "", "phoneName": ""} if endpoint == "recordSipQuery" else {}),
            }
            seen, beyond, page = beyond, set(), 1
            while True:
                stamp = str(int(time.time()))
                headers = {
                    "Api-Key": key, "Timestamp": stamp,
                    "Sign": hashlib.md5((key + secret + stamp).encode()).hexdigest(),
                    "Content-Type": "application/json",
                }  # fmt: skip
                body = ENCODE({"current": page, "size": 100, "params": params})
                answer = DECODE(self.post(url, data=body, headers=headers).content)
                if answer["status"] != "0":
                    raise SystemExit(f"itnio error {answer}")
                data = answer["data"]
                rows = [r for r in data["records"] if r["voiceId"] not in seen]
                beyond.update(r["voiceId"] for r in rows if r["callTime"] >= end_text)
                self.emit(rows)
                if page >= int(data["pages"]):
                    break
                page += 1

    # -- yeastar: login, then per window get_random + CSV download ------------------------------

    def yeastar(self) -> None:
        acct = self.account
        base = f"{acct['api_url'].rstrip('/')}/api/{acct.get('api_version') or 'v1.1.0'}/"
        verify = self.spec["ca_file"]  # per request: REQUESTS_CA_BUNDLE beats session.verify
        password = hashlib.md5(acct["password"].encode()).hexdigest()
        user = {"username": acct["username"], "password": password}
        token = DECODE(self.post(base + "login", json=user, verify=verify).content)["token"]
        for start, end in self.windows():
            query = {"extid": "all", "starttime": self.local(start),
                     "endtime": self.local(end - dt.timedelta(seconds=1))}  # fmt: skip
            got = self.post(base + "cdr/get_random", params={"token": token}, json=query, verify=verify)
            params = {**query, "random": DECODE(got.content)["random"], "token": token}
            self.requests += 1  # the download (a GET, streamed)
            download = self.session.get(base + "cdr/download", params=params, stream=True, verify=verify)
            with download as response:
                if response.headers.get("Content-Type", "").startswith("application/json"):
                    answer = json.loads(response.content)
                    if answer.get("errno") == "20021":
                        continue  # no calls in this window
                    raise SystemExit(f"yeastar error {answer}")
                response.raw.auto_close = False  # else the wrapper reads a closed file at the end
                text = io.TextIOWrapper(response.raw, encoding="utf-8-sig", newline="")
                reader = csv.reader(text)
                header = next(reader)
                self.emit(dict(zip(header, row, strict=True)) for row in reader if row)

    def post(self, url: str, **kwargs: t.Any) -> requests.Response:
        self.requests += 1
        response = self.session.post(url, **kwargs)
        response.raise_for_status()
        return response

    def run(self) -> None:
        if self.stream == "generic_cdr":
            self.generic()
        elif self.stream == "tencent_cdr":
            self.tencent()
        elif self.stream == "itnio_sip_cdr":
            self.itnio("recordSipQuery")
        elif self.stream == "itnio_group_cdr":
            self.itnio("recordGroupQuery")
        elif self.stream == "yeastar_cdr":
            self.yeastar()
        else:
            raise SystemExit(f"unknown stream {self.stream}")
        self.out.flush()


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        floor = Floor(json.load(file))
    floor.run()
    print(floor.records, floor.requests, floor.splits, file=sys.stderr)


if __name__ == "__main__":
    main()
