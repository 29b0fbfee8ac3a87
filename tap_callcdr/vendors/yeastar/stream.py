"""The `yeastar_cdr` stream: per window, `cdr/get_random` then `cdr/download` (a CSV file)."""

from __future__ import annotations

import codecs
import functools
import itertools
import os
import typing as t
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests import PreparedRequest, Response
from singer_sdk import metrics
from urllib3.exceptions import InsecureRequestWarning

from tap_callcdr.core import answers
from tap_callcdr.core.errors import MalformedResponseError, TokenRejectedError, VendorError
from tap_callcdr.core.stream import CDRStream, Record, WindowItem, retries_spent
from tap_callcdr.core.windows import Window
from tap_callcdr.fastpath.emitting import EncodedBatch
from tap_callcdr.fastpath.session import Session
from tap_callcdr.vendors.yeastar import csvfile, envelope
from tap_callcdr.vendors.yeastar.auth import YeastarTokenAuthenticator
from tap_callcdr.vendors.yeastar.columns import CSV_COLUMNS, REQUIRED_COLUMNS
from tap_callcdr.vendors.yeastar.records import CsvRow, build_record, converters
from tap_callcdr.vendors.yeastar.schema import SCHEMA
from tap_callcdr.vendors.yeastar.transport import api_base, network_errors, with_query

if t.TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from singer_sdk.helpers.types import Context, RequestFunc

P = t.ParamSpec("P")
R = t.TypeVar("R")
PBX_TIME = "%Y-%m-%d %H:%M:%S"
MIN_ROW_WORKERS = 2  # one worker is no faster than the tap itself (one core either way)
ROW_WORKER_MIN_BYTES = 256 * 1024  # smaller files (~1,700 calls), or parts, cost more to hand over
# Encodings where a newline byte is never part of another character: a worker reads a file
# in one of them line by line, and it can be split at newlines (the worker reading the part
# before a split checks it is sound).
# (Names as codecs.lookup gives them.) Files in other encodings are read by the tap itself.
SPLITTABLE = frozenset(
    {"utf-8", "utf-8-sig", "gbk", "gb2312", "gb18030", "big5", "ascii", "iso8859-1", "cp1252"}
)


@dataclass
class _Pbx:
    """What one PBX account needs for its requests."""

    session: requests.Session
    auth: YeastarTokenAuthenticator
    verify: bool | str  # the CA bundle path, or whether to verify against the system CAs


class YeastarCDRStream(CDRStream):
    """Call records of Yeastar S-Series PBXs, one PBX per account."""

    vendor = "yeastar"
    name = "yeastar_cdr"
    path = "cdr/download"
    primary_keys = ("account", "row_id")
    replication_key = "timestart"
    schema = SCHEMA

    # -- one session, TLS policy and token per PBX -----------------------------------------

    @cached_property
    def _pbxs(self) -> dict[str, _Pbx]:
        return {}

    @property
    def _pbx(self) -> _Pbx:
        name = self.current_account
        if name not in self._pbxs:
            self._pbxs[name] = self._connect(self.accounts[name])
        return self._pbxs[name]

    def _connect(self, account: t.Mapping[str, t.Any]) -> _Pbx:
        verify: bool | str = account.get("ca_bundle") or account.get("verify_tls") is not False
        if verify is False:
            self.logger.warning(
                "%s",
                self.describe(
                    f"TLS certificate verification is OFF ('{self.account_setting('verify_tls')}' is "
                    "false): anyone on the network path can read or forge the login, token and "
                    f"CDRs; set '{self.account_setting('ca_bundle')}' to the PBX's CA file instead"
                ),
            )
        auth = YeastarTokenAuthenticator(
            account=account,
            send=self._send,
            validate=self.validate_response,
            describe=self.describe,
        )
        return _Pbx(Session(), auth, verify)

    @property
    def requests_session(self) -> requests.Session:
        if self.current_account not in self.accounts:
            return super().requests_session
        return self._pbx.session

    @property
    def authenticator(self) -> YeastarTokenAuthenticator:
        return self._pbx.auth

    def _send(self, request: PreparedRequest, *, stream: bool = False) -> Response:
        """Every request to a PBX goes through here (login and heartbeat too): one count each."""
        pbx = self._pbx
        self._count_request()
        # verify= on send, not session.verify: requests lets REQUESTS_CA_BUNDLE override that.
        with self._network_errors(), warnings.catch_warnings():
            if pbx.verify is False:  # said once, loudly, in _connect; not once per request
                warnings.simplefilter("ignore", InsecureRequestWarning)
            return pbx.session.send(
                request, timeout=self.timeout, stream=stream, verify=pbx.verify,
                allow_redirects=False,
            )  # fmt: skip

    @contextmanager
    def _counting_requests(self, context: Context | None) -> Iterator[None]:
        """The SDK's request counter (METRIC http_request_count) for this thread's requests."""
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            self._thread_state.request_counter = counter
            try:
                yield
            finally:
                self._thread_state.request_counter = None

    def _count_request(self) -> None:
        counter: metrics.Counter | None = getattr(self._thread_state, "request_counter", None)
        if counter is not None:
            counter.increment()
            return
        with self.get_http_request_counter() as alone:  # a request outside any window's count
            alone.increment()

    def _network_errors(self) -> AbstractContextManager[None]:
        return network_errors(self.describe, self.account_setting)

    # -- one window: a random, then the CSV file ---------------------------------------------

    def records_in_window(self, context: Context | None, window: Window) -> Iterator[WindowItem]:
        account = self.account(context)
        zone = self.zone(context)
        query = {
            "extid": "".join(str(account.get("extid") or "all").split()),
            "starttime": window.start.astimezone(zone).strftime(PBX_TIME),
            "endtime": window.last_second.astimezone(zone).strftime(PBX_TIME),  # inclusive
        }
        with self._counting_requests(context):
            file = self._retried(self._read_window)(query)
        if file is None:
            return
        encoding = account.get("csv_encoding") or "utf-8"
        converted = self._converted_by_workers(file, encoding, context)
        if converted is not None:
            file.close()
            yield from converted  # passed on as they are (_read_account)
            return
        table = csvfile.CdrTable(file, encoding=encoding, describe=self.describe, documented=CSV_COLUMNS)
        with table as rows:
            self._check_header(rows.header)
            yield from t.cast("Iterator[Record]", rows)  # CsvRows, Mappings: all post_process needs

    # -- row workers: files converted on several cores (offload.py, worker.py) --------------

    def row_worker_count(self, accounts: int) -> int:
        """As many as allowed, whatever the accounts: even one PBX's file is split."""
        count = self.row_worker_limit()
        return count if count >= MIN_ROW_WORKERS else 0

    def _converted_by_workers(
        self, file: t.IO[bytes], encoding: str, context: Context | None
    ) -> list[EncodedBatch] | None:
        """The file's records made by the row workers, one part of the file each (in file
        order); None: read it here (no workers, a small file, or a part a worker declined)."""
        workers, name = self.row_workers, getattr(file, "name", None)
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        if workers is None or not isinstance(name, str) or size < ROW_WORKER_MIN_BYTES:
            return None
        if not splittable(encoding):
            return None
        source = Path(name)  # spooled into the workers' directory (_download)
        parts = min(workers.count, size // ROW_WORKER_MIN_BYTES)
        bounds = split_points(source, size, parts)
        job = self.worker_job("tap_callcdr.vendors.yeastar.worker:convert_file", context)
        job.update(input=str(source), encoding=encoding)
        jobs = [
            {**job, "out": str(workers.new_path(".jsonl")), "start": start, "stop": stop}
            for start, stop in itertools.pairwise(bounds)
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:  # each waits on its worker, GIL free
            counts = list(pool.map(workers.convert, jobs))
        if any(count is None for count in counts):
            for part in jobs:
                Path(part["out"]).unlink(missing_ok=True)
            return None
        done = zip(jobs, t.cast("list[int]", counts), strict=True)
        return [EncodedBatch(Path(part["out"]), count) for part, count in done]

    def _retried(self, step: Callable[P, R]) -> Callable[P, R]:
        """The SDK's retry policy around a whole step of several requests."""
        return t.cast("Callable[P, R]", self.request_decorator(t.cast("RequestFunc", step)))

    def _read_window(self, query: dict[str, str]) -> t.IO[bytes] | None:
        """One attempt: a fresh random each time, since a random is single use. The random is
        asked under its own retries: only a failed download costs the window a try."""
        try:
            file = self._download(query, self.retried_alone(self._get_random)(query))
        except envelope.NoCallsInRange:
            file = None
        except TokenRejectedError as error:
            if not retries_spent(error):  # else _get_random said so already
                self.authenticator.rejected(error)
            raise
        self.authenticator.accepted()
        return file

    def _get_random(self, query: dict[str, str]) -> str:
        url = api_base(self.accounts[self.current_account]) + "cdr/get_random"
        response = self._send(self.build_prepared_request(method="POST", url=url, json=query))
        try:
            self.validate_response(response)
        except TokenRejectedError as error:  # log in again for its retry
            self.authenticator.rejected(error)
            raise
        random = envelope.payload(response, self.describe).get("random")
        if not random:
            raise MalformedResponseError(self.describe("get_random answer carries no random"))
        return str(random)

    def _download(self, query: dict[str, str], random: str) -> t.IO[bytes]:
        base = api_base(self.accounts[self.current_account])
        url = with_query(base + "cdr/download", {**query, "random": random})
        request = self.build_prepared_request(method="GET", url=url)
        with self._network_errors(), self._send(request, stream=True) as response:
            self.validate_http(response)
            chunks = response.iter_content(csvfile.CHUNK_BYTES)
            first = csvfile.first_bytes(chunks)
            where, status = answers.endpoint(response), response.status_code
            if csvfile.looks_like_json(first):  # errors come as JSON instead of the file
                body = envelope.parse(csvfile.read_json(first, chunks), self.describe, status, where)
                envelope.check(body, self.describe)
                raise MalformedResponseError(self.describe("download answered JSON, not CSV"))
            if not first or csvfile.looks_like_a_page(first):  # a proxy's answer, not the PBX's
                raise answers.not_a_value(first, status, where, self.describe)
            workers = self.row_workers  # their directory: no copy of the file to hand it over
            named = functools.partial(_at, where, self.describe)
            return csvfile.spool(first, chunks, named, workers.directory if workers else None)

    def _check_header(self, header: list[str]) -> None:
        missing = [name for name in CSV_COLUMNS if name not in header]
        absent = [name for name in REQUIRED_COLUMNS if name in missing]
        if absent:
            raise MalformedResponseError(self.describe(f"CDR file has no {absent} column"))
        if missing and self.current_account not in self._warned_missing:
            self._warned_missing.add(self.current_account)
            self.logger.warning("%s", self.describe(f"CDR file has no column(s) {missing}: they stay null"))

    @cached_property
    def _warned_missing(self) -> set[str]:
        return set()

    # -- HTTP and envelope policy -------------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        self.validate_http(response)
        envelope.check(envelope.payload(response, self.describe), self.describe)

    def validate_http(self, response: requests.Response) -> None:
        if response.status_code == 404:  # the usual cause: a wrong URL or API version
            version = self.accounts[self.current_account].get("api_version") or "v1.1.0"
            raise VendorError(
                self.describe(
                    f"HTTP 404 for {urlsplit(response.url).path}: check "
                    f"'{self.account_setting('api_url')}' (the PBX, e.g. https://192.168.1.150:8088) "
                    f"and '{self.account_setting('api_version')}' (now {version!r}; S-Series use "
                    "v1.1.0, OEM boxes v0.0.1)"
                )
            )
        super().validate_response(response)

    # -- records ------------------------------------------------------------------------------

    def post_process(self, row: dict, context: Context | None = None) -> dict:
        """CSV row -> typed record (records.py): UTC start, integer durations, unknown columns in `extra`."""
        line = row if isinstance(row, CsvRow) else CsvRow.of(row, CSV_COLUMNS)
        return self.built(build_record, line, context, converters(self.zone(context)))

    def record_label(self, row: t.Mapping[str, t.Any]) -> str:
        return f"callid {row.get('callid')!r}"


def _at(where: str, describe: Callable[[str], str], cause: str) -> str:
    return describe(f"{where}: {cause}")


def splittable(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in SPLITTABLE
    except LookupError:
        return False


def split_points(path: Path, size: int, parts: int) -> list[int | None]:
    """Byte offsets cutting the file into `parts` of about equal size, each just after a
    newline (the last bound None: to the end)."""
    bounds: list[int | None] = [0]
    with path.open("rb") as file:
        for part in range(1, parts):
            file.seek(size * part // parts)
            file.readline()  # to the end of the line the cut falls in
            at = file.tell()
            if at >= size or at <= (bounds[-1] or 0):
                break
            bounds.append(at)
    return [*bounds, None]


