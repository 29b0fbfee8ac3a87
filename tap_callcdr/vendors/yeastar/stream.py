"""The `yeastar_cdr` stream: per window, `cdr/get_random` then `cdr/download` (a CSV file)."""

from __future__ import annotations

import functools
import typing as t
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

import requests
from requests import PreparedRequest, Response
from singer_sdk import metrics
from urllib3.exceptions import InsecureRequestWarning

from tap_callcdr.core import answers
from tap_callcdr.core.errors import MalformedResponseError, TokenRejectedError, VendorError
from tap_callcdr.core.stream import CDRStream, Record, WindowItem, retries_spent
from tap_callcdr.core.windows import Window
from tap_callcdr.fastpath import rowworkers
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
    # Row workers convert each CSV file, cut at newlines into a part per worker (worker.py).
    row_task = "tap_callcdr.vendors.yeastar.worker:convert_file"
    row_cut = rowworkers.FILE_AT_NEWLINES

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
        converted = self.converted_by_workers(context, file, encoding)
        if converted is not None:
            file.close()
            yield from converted  # passed on as they are (_read_account)
            return
        table = csvfile.CdrTable(file, encoding=encoding, describe=self.describe, documented=CSV_COLUMNS)
        with table as rows:
            self._check_header(rows.header)
            yield from t.cast("Iterator[Record]", rows)  # CsvRows, Mappings: all post_process needs

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
