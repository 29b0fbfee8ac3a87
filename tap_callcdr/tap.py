"""tap-callcdr: call detail records from telephony vendors, one stream per endpoint."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import re
import sys
import typing as t
import zoneinfo
from collections.abc import Iterator

import click
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.tap_base import CliTestOptionValue

from tap_callcdr.core.account import account_zone
from tap_callcdr.core.callstream import CALLS, CallsStream
from tap_callcdr.core.catalog import keep_declared_keywords
from tap_callcdr.core.errors import (
    AccountsFailedError,
    CallCDRError,
    ConfigError,
    StateError,
    StreamsFailedError,
    collected,
    one_line,
    raise_collected,
)
from tap_callcdr.core.redact import register as register_secrets
from tap_callcdr.core.settings import check_known, check_types
from tap_callcdr.core.statecheck import check_bookmarks, checked_state_file, shape_problem
from tap_callcdr.core.stream import CDRStream
from tap_callcdr.core.vendor import VendorSpec
from tap_callcdr.core.windows import parse_instant
from tap_callcdr.fastpath.sdk import SDKTap
from tap_callcdr.fastpath.writer import BufferedMsgspecWriter
from tap_callcdr.vendors import generic, itnio, tencent, yeastar

# Every vendor package exposes a VendorSpec; `<key>_accounts` in config turns it on.
VENDORS: tuple[VendorSpec, ...] = (generic.VENDOR, tencent.VENDOR, itnio.VENDOR, yeastar.VENDOR)
register_secrets(name for vendor in VENDORS for name in vendor.secret_names)


class TapCallCDR(SDKTap):
    """Singer tap for call detail records."""

    name = "tap-callcdr"
    message_writer_class = BufferedMsgspecWriter

    config_jsonschema = th.PropertiesList(
        th.Property("start_date", th.DateTimeType, required=True,
                    description="Earliest call start time to extract (ISO 8601)"),
        th.Property("lookback_minutes", th.IntegerType, default=120,
                    description="Re-read this much before the bookmark: CDRs land after calls end"),
        th.Property("settle_lag_minutes", th.IntegerType, default=5,
                    description="Read only up to now minus this, so windows are complete"),
        th.Property("window_hours", th.IntegerType,
                    description="Size of the time windows a run walks (default 24); for Tencent, "
                    "the longest span one request may ask for (default 168)"),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Retries of a transient failure before giving up"),
        th.Property("retry_wait_seconds", th.NumberType, default=2.0,
                    description="First retry step; doubles each retry up to retry_max_wait_seconds, "
                    "each wait jittered between half the step and the step"),
        th.Property("retry_max_wait_seconds", th.NumberType, default=60.0,
                    description="The longest wait before a retry, Retry-After included"),
        th.Property("trust_record_types", th.BooleanType, default=False,
                    description="Skip the SDK's per-record type conformance outright (by default "
                    "a one-pass check runs it only where it would change something; records are "
                    "typed at parse time, so the output is identical, a few % faster)"),
        th.Property("parallel_accounts", th.IntegerType, default=4,
                    description="Accounts of a stream read at the same time (each in its own thread)"),
        th.Property("row_workers", th.IntegerType,
                    description="The most row worker processes a stream starts to convert records "
                    "on other cores (Yeastar, ITNIO; about 23 MB each). Default: the core count "
                    "on 2+ cores, else 0; 0 turns them off"),
        th.Property("request_timeout_seconds", th.IntegerType, default=60,
                    description="Give up on a silent vendor after this long (then retry)"),
        th.Property("progress_interval_seconds", th.NumberType, default=30.0,
                    description="At most this often (at a window's end, or within a long "
                    "window), each account says at INFO how far it has read (records, window "
                    "reached, windows left, time left); 0: at every window's end"),
        th.Property("use_singer_decimal", th.BooleanType, default=False,
                    description="Money (ITNIO's cost, rate, baseCost) as strings of the vendor's "
                    "exact digits with format x-singer.decimal (precision 38, scale 18), which "
                    "SDK loaders make NUMBER/DECIMAL(38,18): exact in target-snowflake, whose "
                    "numbers are FLOAT. Off: JSON numbers, already exact in target-postgres"),
        th.Property("shard_count", th.IntegerType, default=1,
                    description="Split the accounts over this many runs (shards), each with its "
                    "own state id (docs/scale.md); an account is in one shard, by a stable hash "
                    "of its vendor and name"),
        th.Property("shard_index", th.IntegerType,
                    description="Which shard this run reads: 0 to shard_count - 1 (required "
                    "when shard_count is more than 1)"),
        *(vendor.accounts_property() for vendor in VENDORS),
        additional_properties=False,  # a misspelt setting is refused (settings.py)
    ).to_dict()  # fmt: skip

    def check_settings(self) -> None:
        """Before the SDK's check against the schema (its own capability settings included):
        an unknown key is named, with the known one that was probably meant, and a value of
        the wrong type by its path, never quoted."""
        schema = self.config_jsonschema
        self.append_builtin_config(schema)  # as the SDK's check does
        config = dict(self.config)  # JSON Schema's objects are dicts
        check_known(config, schema)
        check_types(config, schema)

    def setup_mapper(self) -> None:
        """The SDK's, on a catalog that kept the keywords the streams declare (catalog.py:
        use_singer_decimal's precision and scale reach the SCHEMA messages)."""
        keep_declared_keywords(self.catalog, {name: s.schema for name, s in self.streams.items()})
        calls = self.streams.get(CALLS)
        if calls is None or calls.selected:
            super().setup_mapper()
            return
        # The mapper keeps only the selected properties of a stream, none of a deselected one's.
        # `calls` is not selected by default: a map naming it would fail on its keys, and a
        # dry run (`--test`, the SDK's standard tests), which selects it after this, would
        # write it with no properties. So the mapper is set up as if it were selected.
        was = calls.metadata.root.selected
        calls.selected = True
        try:
            super().setup_mapper()
        finally:
            calls.selected = was

    def load_state(self, state: dict[str, t.Any]) -> None:
        """The SDK's, on a state checked first (statecheck.py): a bookmark that cannot be
        used stops the run naming it; one that is ignored is warned about."""
        problem = shape_problem(state)
        if problem:
            raise StateError(f"state {problem}")
        super().load_state(state)
        if state.get("bookmarks"):
            check_bookmarks(state["bookmarks"], self.streams, self.logger)

    def discover_streams(self) -> list[Stream]:
        check_config(self.config)
        warn_if_start_in_future(self.config, self.logger)
        streams: list[Stream] = []
        for vendor in VENDORS:
            if self.config.get(vendor.setting):
                for stream_class in vendor.streams:
                    stream = stream_class(tap=self)
                    stream.to_call = vendor.calls  # the unified `calls` (core/callstream.py)
                    streams.append(stream)
        if any(vendor.calls is not None and self.config.get(vendor.setting) for vendor in VENDORS):
            streams.append(CallsStream(tap=self))
        return streams

    def before_sync(self) -> None:
        """A sharded run first says how many accounts are its own."""
        count = int(self.config.get("shard_count", 1))
        if count > 1:
            streams = [s for s in self.streams.values() if isinstance(s, CDRStream)]
            accounts = {(s.vendor, name) for s in streams for name in s.accounts}
            mine = {(s.vendor, p["account"]) for s in streams for p in s.partitions or []}
            index = int(self.config.get("shard_index", 0))
            self.logger.info("shard %d of %d: %d of %d accounts", index, count, len(mine), len(accounts))

    def stream_failed(self, stream: Stream, error: Exception) -> bool:
        """A stream failed (a vendor down, every account's credentials wrong): True if the
        run goes on with the other streams (`streams_go_on`), which then names it at the end."""
        failed = FAILED_STREAMS.get()
        if failed is None:
            return False
        failed[stream.name] = error
        stream.logger.warning("%s failed (reported at the end); going on with the other streams", stream.name)
        return True

    @classmethod
    def invoke(  # type: ignore[override]  # as the SDK's Tap.invoke
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """The SDK's, but a stream that fails does not keep the others from being read
        (`streams_go_on`), and every error the user can act on is one line, not a traceback."""
        try:
            with user_errors(), streams_go_on():
                state = checked_state_file(state)  # one line naming the file, not the SDK's traceback
                super().invoke(
                    about=about, about_format=about_format, config=config, state=state, catalog=catalog
                )
        finally:  # whatever happened, what was written reaches the target
            BufferedMsgspecWriter.flush_all()

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """The SDK's, but a config file that is missing, not JSON or not an object is one line
        naming it, not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except (OSError, ValueError, TypeError) as exc:
            files = ", ".join(f"'{path}'" for path in value if path != "ENV")
            fail(f"config file {files} cannot be read as a JSON object: {one_line(str(exc))}")

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """The SDK's `--discover`, but the config is checked as for a run (the streams depend
        on it; Meltano discovers before every run) and a bad one is the same one line."""
        if not value:
            return
        config = ctx.params.get("config")
        with user_errors():
            cls(
                config=config.config if config else {},
                parse_env_config=config.parse_env if config else False,
                validate_config=True,
                setup_mapper=False,
            ).run_discovery()
        ctx.exit()

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """The SDK's `--test` and `--test=schema` (as of 0.54), which exit from this callback,
        never reaching `invoke`: a bad config is the same one line, every stream is tested
        even when one fails (`dry_run`), and what they wrote reaches the target here."""
        if value == CliTestOptionValue.Disabled.value:
            return
        config = ctx.params.get("config")
        try:
            with user_errors():
                tap = cls(
                    config=config.config if config else {},
                    parse_env_config=config.parse_env if config else False,
                    validate_config=True,
                )
                tap.write_schemas() if value == CliTestOptionValue.Schema.value else tap.dry_run()
        finally:
            BufferedMsgspecWriter.flush_all()
        ctx.exit()

    def dry_run(self) -> None:
        """The SDK's connection test (one record a stream), but as a run: a failed stream
        does not keep the others from being tested (`streams_go_on`), and an account that
        failed before the stream's first record is reported (the test stops each stream
        there, so the stream never got to say it); then the test fails naming every failure."""
        with streams_go_on() as failed:
            self.run_connection_test()
            for stream in self.streams.values():
                accounts = stream.failed_accounts if isinstance(stream, CDRStream) else {}
                if accounts and stream.name not in failed:
                    counted = f"{len(accounts)} accounts"
                    failed[stream.name] = collected(list(accounts.values()), AccountsFailedError, counted)


# The streams that failed in a run that goes on past them (`streams_go_on`); None: a failed
# stream stops the run, as in the SDK. A context variable, as the SDK's `invoke` builds the tap.
FAILED_STREAMS: contextvars.ContextVar[dict[str, Exception] | None] = contextvars.ContextVar(
    "FAILED_STREAMS", default=None
)


@contextlib.contextmanager
def streams_go_on() -> Iterator[dict[str, Exception]]:
    """Within, a stream that fails does not stop the run (`TapCallCDR.stream_failed`): the
    other streams are read and their bookmarks move; at the end the run fails naming each
    failure (the one as it is, or StreamsFailedError). The console script runs so; the tap
    used in-process (`sync_all`) stops at its first failed stream, as the SDK's does."""
    failed: dict[str, Exception] = {}
    token = FAILED_STREAMS.set(failed)
    try:
        yield failed
    finally:
        FAILED_STREAMS.reset(token)
    raise_collected(list(failed.values()), StreamsFailedError, f"{len(failed)} streams")


USER_ERRORS = (ConfigValidationError, CallCDRError, FatalAPIError, RetriableAPIError, OSError)


def user_message(exc: BaseException) -> str:
    """One of USER_ERRORS as the line the user reads."""
    if isinstance(exc, ConfigValidationError):
        return f"config error: {'; '.join(exc.errors) or exc}"
    if isinstance(exc, OSError):  # connection failures after all retries
        return f"gave up: {type(exc).__name__}: {exc}"
    return str(exc)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every error the user can act on: one line and exit 1, not a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(user_message(exc))


def fail(message: str) -> t.NoReturn:
    TapCallCDR.logger.error("%s", " ".join(message.split()))
    sys.exit(1)


def check_config(config: t.Mapping[str, t.Any]) -> None:
    """What JSON Schema cannot say; each error names its setting."""
    try:
        parse_instant(str(config.get("start_date")))
    except ValueError:
        raise ConfigError(
            "start_date", f"{config.get('start_date')!r} is not an ISO 8601 date-time"
        ) from None
    for setting in ("lookback_minutes", "settle_lag_minutes", "progress_interval_seconds"):
        if float(config.get(setting, 0)) < 0:  # float: -0.5 is negative too
            raise ConfigError(setting, "must not be negative")
    ceiling = config.get("retry_max_wait_seconds")
    if ceiling is not None and float(ceiling) <= 0:
        raise ConfigError("retry_max_wait_seconds", "must be more than 0")
    least_of = {"window_hours": 1, "max_retries": 0, "parallel_accounts": 1, "row_workers": 0}
    least_of |= {"shard_count": 1, "shard_index": 0}
    for setting, least in least_of.items():
        value = config.get(setting)
        if value is not None and int(value) < least:
            raise ConfigError(setting, f"must be at least {least}")
    count = int(config.get("shard_count", 1))
    if count > 1 and config.get("shard_index") is None:  # no default: a misspelt variable
        raise ConfigError(  # (Meltano drops unknown ones) would read shard 0 twice, silently
            "shard_index", f"with shard_count {count}, say which shard this run reads: 0 to {count - 1}"
        )
    if int(config.get("shard_index", 0)) >= count:
        raise ConfigError("shard_index", f"must be less than shard_count ({count}): 0 to {count - 1}")
    check_stream_map_config(config)
    if not any(config.get(vendor.setting) for vendor in VENDORS):
        names = ", ".join(vendor.setting for vendor in VENDORS)
        raise ConfigError(names, "configure at least one account")
    for vendor in VENDORS:
        for index, account in enumerate(config.get(vendor.setting) or []):
            check_account(f"{vendor.setting}[{index}]", account, vendor)
            vendor.check_account(f"{vendor.setting}[{index}]", account)
        check_unique_names(vendor.setting, config.get(vendor.setting) or [])


MAP_CONFIG_KEY = re.compile(r"""\bconfig\[\s*['"]([^'"]+)['"]\s*\]""")


def check_stream_map_config(config: t.Mapping[str, t.Any]) -> None:
    """A stream map reading config['x'] that stream_map_config lacks would fail with a
    KeyError traceback at its first record (a salt whose variable was not exported)."""
    known = config.get("stream_map_config") or {}
    read = {key for text in strings_in(config.get("stream_maps")) for key in MAP_CONFIG_KEY.findall(text)}
    for key in sorted(read):
        if key not in known:
            raise ConfigError(
                "stream_map_config",
                f"has no {key!r}, which stream_maps reads as config[{key!r}]: set it "
                "(TAP_CALLCDR_STREAM_MAP_CONFIG through Meltano)",
            )


def strings_in(value: t.Any) -> Iterator[str]:
    """Every string in a JSON value, as written (a JSON dump would escape double quotes)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def warn_if_start_in_future(config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
    start = parse_instant(str(config["start_date"]))
    if start > dt.datetime.now(dt.UTC):
        logger.warning(
            "start_date %s is in the future: nothing can be read until then (a run reads "
            "nothing and ends)",
            config["start_date"],
        )


def check_account(where: str, account: t.Mapping[str, t.Any], vendor: VendorSpec) -> None:
    """What every vendor's account needs: a name, a real zone, an http(s) URL."""
    if not account.get("name"):
        raise ConfigError(f"{where}.name", "every account needs a name")
    try:
        account_zone(account)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = account.get("timezone")
        raise ConfigError(f"{where}.timezone", f"{zone!r} is not an IANA time zone") from None
    url = str(account.get("api_url") or vendor.default_api_url or "")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.api_url", f"{url!r} is not an http(s) URL")


def check_unique_names(setting: str, accounts: list[t.Mapping[str, t.Any]]) -> None:
    names = [account.get("name") for account in accounts]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"{setting}[{index}].name", f"account name {name!r} is used twice")


cli = TapCallCDR.cli
