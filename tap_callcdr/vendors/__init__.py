"""One package per vendor, all of the same shape, none importing another (tap.py lists them).

Every vendor package has these modules, each in the same role:

- `__init__.py`: what the vendor's API is (docstring), and VENDOR, loaded on first use from
  spec.py (`vendor_attribute`): a row worker imports a vendor's light modules and must not
  pay for the SDK that VENDOR's settings need.
- `spec.py`: VENDOR, the core's VendorSpec: the vendor's streams, account settings and
  their checks, and what its secrets are called (settings marked secret, `wire_secrets`).
- `auth.py`: the SDK authenticator (a login, a signature or static credentials).
- `envelope.py`: an answer to its payload (core/answers.py's `payload`, which parses a body
  once), and `check(body, describe)`: the vendor's codes to the tap's errors (core/errors.py).
- `columns.py`: the record's fields by kind; imports nothing, for records.py and schema.py.
- `schema.py`: the streams' JSON schemas, built from columns.py.
- `records.py`: a vendor row to a record (`converters`, `build_record`); imports no SDK, so a
  row worker can use it.
- `stream.py`: the SDK stream(s) on the core's CDRStream: requests, answers, post_process.

Optional modules, named so wherever a vendor has one:

- `paging.py`: how a window takes more than one answer: SDK paginators (generic, ITNIO), or
  Tencent's request spans (an API without paging). Yeastar reads one file a window: none.
- `worker.py`: the vendor's row-worker task (tap_callcdr/fastpath/worker.py runs it);
  imports no SDK.
- `transport.py`: HTTP of the vendor's own, outside the SDK's request loop (Yeastar: URLs with
  secrets in their query, TLS failures).
- a reader of a file format only one vendor sends, named after it (Yeastar's `csvfile.py`).

Imports point one way: a vendor imports tap_callcdr.core, tap_callcdr.fastpath and its own
package, never tap.py (which registers it); the core and fastpath import no vendor, and
fastpath no core (tests/test_layout.py checks each).
"""

from __future__ import annotations

import importlib
import typing as t

REQUIRED_MODULES = (
    "__init__", "spec", "auth", "envelope", "columns", "schema", "records", "stream",
)  # fmt: skip


def vendor_attribute(package: str) -> t.Callable[[str], t.Any]:
    """The package's module `__getattr__`: VENDOR comes from `<package>.spec`."""

    def attribute(name: str) -> t.Any:
        if name == "VENDOR":
            return importlib.import_module(f"{package}.spec").VENDOR
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
