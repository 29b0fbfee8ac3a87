"""Every vendor's secrets are masked in log lines and errors, by the names the vendor declares
(its settings marked secret, and names that only appear on the wire): a new vendor's secret is
covered without editing the core."""

from __future__ import annotations

import json
import logging

import pytest

from tap_callcdr.core.redact import URL_LOGGERS, scrub
from tap_callcdr.tap import VENDORS

VALUE = "S3cr3t-value"
SECRET_SETTINGS = [
    (vendor.key, prop.name) for vendor in VENDORS for prop in vendor.account_properties if prop.secret
]


def test_every_vendor_declares_its_secret_settings() -> None:
    assert {vendor for vendor, _ in SECRET_SETTINGS} == {vendor.key for vendor in VENDORS}


@pytest.mark.parametrize(("vendor", "setting"), SECRET_SETTINGS)
def test_every_secret_setting_is_masked_in_a_log_line(
    caplog: pytest.LogCaptureFixture, vendor: str, setting: str
) -> None:
    """As urllib3 quotes a URL (the query), and as an answer quoted in a line (JSON)."""
    logger = logging.getLogger(URL_LOGGERS[0])
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        url = f"/x?a=1&{setting}={VALUE}"
        logger.debug('%s://%s:%s "%s %s %s" %s', "https", "host", 443, "GET", url, "HTTP/1.1", 200)
        logger.debug("answer: %s", json.dumps({"a": 1, setting: VALUE}))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2 and VALUE not in caplog.text, lines
    assert f"{setting}=***" in lines[0] and f'"{setting}": "***' in lines[1]


@pytest.mark.parametrize(("vendor", "name"), [(v.key, name) for v in VENDORS for name in v.wire_secrets])
def test_every_secret_only_on_the_wire_is_masked(vendor: str, name: str) -> None:
    text = f"/x?{name}={VALUE}&b=2 {json.dumps({name: VALUE})}"
    assert scrub(text) == f'/x?{name}=***&b=2 {{"{name}": "***"}}'
