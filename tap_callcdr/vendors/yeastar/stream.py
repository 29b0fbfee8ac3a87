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
from tap_callcdr.core.account import Account
from tap_callcdr.core.errors import MalformedResponseError, TokenRejectedError, VendorError
from tap_callcdr.core.stream import CDRStream, Record, WindowItem, retries_spent
from tap_callcdr.core.windows import Window
from tap_callcdr.fastpath import rowworkers
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


@dataclass(eq=False)
class Pbx(Account[YeastarTokenAuthenticator]):
    """A PBX account: its TLS policy, and the request count of the window being read."""

    counter: metrics.Counter | None = None  # METRIC http_request_count of the window being read
    warned_missing: bool = False  # said once that its CDR files lack documented columns

    @cached_property
    def verify(self) -> bool | str:
        """The CA bundle path, or whether to verify against the system CAs."""
        return self.settings.get("ca_bundle") or self.settings.get("verify_tls") is not False


class YeastarCDRStream(CDRStream[Pbx]):
    """Call records of Yeastar S-Series PBXs, one PBX per account."""

    vendor = "yeastar"
    name = "yeastar_cdr"
    path = "cdr/download"
    primary_keys = ("account", "row_id")
    replication_key = "timestart"
    schema = SCHEMA
    account_type = Pbx
    # Row workers convert each CSV file, cut at newlines into a part per worker (worker.py).
    row_task = "tap_callcdr.vendors.yeastar.worker:convert_file"
    row_cut = rowworkers.FILE_AT_NEWLINES

    # -- one session, TLS policy and token per PBX -----------------------------------------

    def open_account(self, name: str) -> Pbx:
        pbx = super().open_account(name)
        if pbx.verify is False:  # said once, loudly; not once per request
            self.logger.warning(
                "%s",
                pbx.describe(
                    f"TLS certificate verification is OFF ('{pbx.setting('verify_tls')}' is "
                    "false): anyone on the network path can read or forge the login, token and "
                    f"CDRs; set '{pbx.setting('ca_bundle')}' to the PBX's CA file instead"
                ),
            )
        return pbx

    def new_authenticator(self, account: Pbx) -> YeastarTokenAuthenticator:
        return YeastarTokenAuthenticator(
            account,
            send=functools.partial(self._send, account),
            validate=functools.partial(self.check_response, account=account),
        )

    def _send(self, pbx: Pbx, request: PreparedRequest, *, stream: bool = False) -> Response:
        """Every request to a PBX goes through here (login and heartbeat too): one count each."""
        self._count_request(pbx)
        # verify= on send, not session.verify: requests lets REQUESTS_CA_BUNDLE override that.
        with self._network_errors(pbx), warnings.catch_warnings():
            if pbx.verify is False:  # said once, loudly, in open_account; not once per request
                warnings.simplefilter("ignore", InsecureRequestWarning)
            return pbx.session.send(
                request, timeout=self.timeout, stream=stream, verify=pbx.verify,
                allow_redirects=False,
            )  # fmt: skip

    @contextmanager
    def _counting_requests(self, pbx: Pbx) -> Iterator[None]:
        """The SDK's request counter (METRIC http_request_count) for the PBX's window."""
        with self.get_http_request_counter() as counter:
            counter.with_context(pbx.context)
            pbx.counter = counter
            try:
                yield
            finally:
                pbx.counter = None

    def _count_request(self, pbx: Pbx) -> None:
        if pbx.counter is not None:
            pbx.counter.increment()
            return
        with self.get_http_request_counter() as alone:  # a request outside any window's count
            alone.increment()

    def _network_errors(self, pbx: Pbx) -> AbstractContextManager[None]:
        return network_errors(pbx.describe, pbx.setting)

    # -- one window: a random, then the CSV file ---------------------------------------------

    def records_in_window(self, account: Pbx, window: Window) -> Iterator[WindowItem]:
        settings, zone = account.settings, account.zone
        query = {
            "extid": "".join(str(settings.get("extid") or "all").split()),
            "starttime": window.start.astimezone(zone).strftime(PBX_TIME),
            "endtime": window.last_second.astimezone(zone).strftime(PBX_TIME),  # inclusive
        }
        with self._counting_requests(account):
            file = self._retried(self._read_window)(account, query)
        if file is None:
            return
        encoding = settings.get("csv_encoding") or "utf-8"
        converted = self.converted_by_workers(account, file, encoding)
        if converted is not None:
            file.close()
            yield from converted  # passed on as they are (_read_account)
            return
        table = csvfile.CdrTable(file, encoding=encoding, describe=account.describe, documented=CSV_COLUMNS)
        with table as rows:
            self._check_header(account, rows.header)
            yield from t.cast("Iterator[Record]", rows)  # CsvRows, Mappings: all post_process needs

    def _retried(self, step: Callable[P, R]) -> Callable[P, R]:
        """The SDK's retry policy around a whole step of several requests."""
        return t.cast("Callable[P, R]", self.request_decorator(t.cast("RequestFunc", step)))

    def _read_window(self, pbx: Pbx, query: dict[str, str]) -> t.IO[bytes] | None:
        """One attempt: a fresh random each time, since a random is single use. The random is
        asked under its own retries: only a failed download costs the window a try."""
        try:
            file = self._download(pbx, query, self.retried_alone(self._get_random)(pbx, query))
        except envelope.NoCallsInRange:
            file = None
        except TokenRejectedError as error:
            if not retries_spent(error):  # else _get_random said so already
                pbx.authenticator.rejected(error)
            raise
        pbx.authenticator.accepted()
        return file

    def _get_random(self, pbx: Pbx, query: dict[str, str]) -> str:
        url = api_base(pbx.settings) + "cdr/get_random"
        response = self._send(pbx, self.prepared(pbx, method="POST", url=url, json=query))
        try:
            self.check_response(response, pbx)
        except TokenRejectedError as error:  # log in again for its retry
            pbx.authenticator.rejected(error)
            raise
        random = envelope.payload(response, pbx.describe).get("random")
        if not random:
            raise MalformedResponseError(pbx.describe("get_random answer carries no random"))
        return str(random)

    def _download(self, pbx: Pbx, query: dict[str, str], random: str) -> t.IO[bytes]:
        url = with_query(api_base(pbx.settings) + "cdr/download", {**query, "random": random})
        request = self.prepared(pbx, method="GET", url=url)
        describe = pbx.describe
        with self._network_errors(pbx), self._send(pbx, request, stream=True) as response:
            self.validate_http(response, pbx)
            chunks = response.iter_content(csvfile.CHUNK_BYTES)
            first = csvfile.first_bytes(chunks)
            where, status = answers.endpoint(response), response.status_code
            if csvfile.looks_like_json(first):  # errors come as JSON instead of the file
                body = envelope.parse(csvfile.read_json(first, chunks), describe, status, where)
                envelope.check(body, describe)
                raise MalformedResponseError(describe("download answered JSON, not CSV"))
            if not first or csvfile.looks_like_a_page(first):  # a proxy's answer, not the PBX's
                raise answers.not_a_value(first, status, where, describe)
            named = functools.partial(_at, where, describe)
            return csvfile.spool(first, chunks, named, self.spool_directory())

    def _check_header(self, pbx: Pbx, header: list[str]) -> None:
        missing = [name for name in CSV_COLUMNS if name not in header]
        absent = [name for name in REQUIRED_COLUMNS if name in missing]
        if absent:
            raise MalformedResponseError(pbx.describe(f"CDR file has no {absent} column"))
        if missing and not pbx.warned_missing:
            pbx.warned_missing = True
            self.logger.warning("%s", pbx.describe(f"CDR file has no column(s) {missing}: they stay null"))

    # -- HTTP and envelope policy -------------------------------------------------------------

    def check_response(self, response: requests.Response, account: Pbx) -> None:
        self.validate_http(response, account)
        envelope.check(envelope.payload(response, account.describe), account.describe)

    def validate_http(self, response: requests.Response, pbx: Pbx) -> None:
        if response.status_code == 404:  # the usual cause: a wrong URL or API version
            version = pbx.settings.get("api_version") or "v1.1.0"
            raise VendorError(
                pbx.describe(
                    f"HTTP 404 for {urlsplit(response.url).path}: check "
                    f"'{pbx.setting('api_url')}' (the PBX, e.g. https://192.168.1.150:8088) "
                    f"and '{pbx.setting('api_version')}' (now {version!r}; S-Series use "
                    "v1.1.0, OEM boxes v0.0.1)"
                )
            )
        super().check_response(response, pbx)

    # -- records ------------------------------------------------------------------------------

    def post_process(self, row: dict, context: Context | None = None) -> dict:
        """CSV row -> typed record (records.py): UTC start, integer durations, unknown columns in `extra`."""
        line = row if isinstance(row, CsvRow) else CsvRow.of(row, CSV_COLUMNS)
        account = self.account(context)
        return self.built(build_record, line, account, converters(account.zone))

    def record_label(self, row: t.Mapping[str, t.Any]) -> str:
        return f"callid {row.get('callid')!r}"


def _at(where: str, describe: Callable[[str], str], cause: str) -> str:
    return describe(f"{where}: {cause}")
