"""``callcdr-simulator``: run the vendor simulator in the foreground until SIGTERM/SIGINT.

Prints exactly one line to stdout once listening, so scripts can wait for it; everything else
(account credentials) goes to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from .core import Vendor
from .server import Simulator
from .tls import simulator_tls
from .vendors import VENDORS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcdr-simulator", description="Local simulator of telephony vendors' CDR APIs."
    )
    add = parser.add_argument
    add("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    add("--calls", type=int, default=1000, help="calls per demo account")
    add("--days", type=int, default=7, help="days of history before the anchor")
    add("--seed", type=int, default=1, help="data seed; same seed + anchor = same data")
    add("--timezone", default="Asia/Shanghai", help="demo accounts' local time zone")
    for vendor in VENDORS:
        default = ",".join(vendor.demo_names)
        add(
            f"--{vendor.name}-accounts",
            *vendor.cli_aliases,
            dest=f"{vendor.name}_accounts",
            default=default,
            help=f"comma-separated {vendor.name} demo accounts ({default or 'none'})",
        )
        vendor.add_arguments(add)
    add("--https", action="store_true", help="serve HTTPS with a throwaway test CA (trustme)")
    add(
        "--ca-file",
        type=Path,
        help="where --https writes the test CA's PEM (default: a fresh temp dir of this process, "
        "removed on exit; printed to stderr)",
    )
    add("--anchor", help="ISO 8601 'now' of the generated data (default: now, minute-floored)")
    add(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:k=v,...]",
        help="e.g. http_500:times=2,after=1 or vendor_error:code=1001 (repeatable)",
    )
    add(
        "--config",
        type=Path,
        help="JSON: a list of generic accounts, or an object with any of "
        + ", ".join(f'"{vendor.name}"' for vendor in VENDORS)
        + " (each a list of that vendor's accounts, instead of its demo accounts), "
        '"anchor", "faults" and "fault_mix" (an object: rate, seed, kinds, vendor, applies_to, '
        "params)",
    )
    add(
        "--fault-rate",
        type=float,
        help="fault mix: on each vendor request (logins too), with this probability (0..1), "
        "one fault of every retryable kind, drawn evenly (see also \"fault_mix\" in --config)",
    )
    add("--fault-seed", type=int, help="the fault mix's RNG seed (default: random, printed)")
    add("--print-truth", action="store_true", help="print ground truth as JSON lines and exit")
    return parser


def build_simulator(args: argparse.Namespace) -> Simulator:
    config = _load_config(args.config) if args.config else {}
    anchor_text = args.anchor or config.get("anchor")
    anchor = datetime.fromisoformat(anchor_text) if anchor_text else None
    accounts = [account for vendor in VENDORS for account in _accounts(vendor, args, config)]
    sim = Simulator(accounts, port=args.port, anchor=anchor, ssl_context=_tls_context(args))
    for vendor in sim.vendors.values():
        vendor.configure(args)
    for fault in config.get("faults", []):
        sim.faults.add(**fault)
    for spec in args.fault:
        sim.faults.add_spec(spec)
    _set_fault_mix(sim, args, config.get("fault_mix"))
    return sim


def _accounts(vendor: type[Vendor], args: argparse.Namespace, config: dict[str, Any]) -> list[Any]:
    """The vendor's accounts as --config gives them in full, else its demo accounts by name."""
    if vendor.name in config:
        return [vendor.account_type.from_dict(raw) for raw in config[vendor.name]]
    names = getattr(args, f"{vendor.name}_accounts").split(",")
    return vendor.demo_from_args([name.strip() for name in names if name.strip()], args)


def _set_fault_mix(sim: Simulator, args: argparse.Namespace, options: dict[str, Any] | None) -> None:
    """The command line's rate and seed win over the config's."""
    mix = dict(options or {})
    if args.fault_rate is not None:
        mix["rate"] = args.fault_rate
    if args.fault_seed is not None:
        mix["seed"] = args.fault_seed
    if mix.get("rate"):
        chosen = sim.faults.set_mix(**mix)  # so a failing run can be replayed
        print(f"  fault mix: rate {chosen.rate}, seed {chosen.seed}", file=sys.stderr)


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.https:
        return None
    if args.ca_file is None:  # per process: simulators running side by side never share one
        folder = tempfile.mkdtemp(prefix="callcdr-simulator-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        args.ca_file = Path(folder, "ca.pem")
    context = simulator_tls(args.ca_file).context
    print(f"  test CA (a client's ca_bundle): {args.ca_file}", file=sys.stderr)
    return context


def _load_config(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {"generic": raw} if isinstance(raw, list) else raw


def print_truth(sim: Simulator) -> None:
    for vendor in sim.vendors.values():
        for account in vendor.accounts():
            for record in vendor.truth(account):
                line = {"vendor": vendor.name, "account": account, "record": record}
                print(json.dumps(line, ensure_ascii=False))


def _describe(sim: Simulator) -> None:
    for vendor in sim.vendors.values():
        for name in vendor.accounts():
            print(f"  {vendor.account_line(name, sim.url)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sim = build_simulator(args)
    except (OSError, ValueError, TypeError, KeyError) as err:
        parser.error(str(err))
    if args.print_truth:
        print_truth(sim)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sim.start()
    except OSError as err:
        print(f"callcdr-simulator: cannot listen on port {args.port}: {err}", file=sys.stderr)
        return 1
    try:
        print(f"callcdr-simulator listening on {sim.url}", flush=True)
        _describe(sim)
        while not stop.wait(0.5):  # a timed wait lets signal handlers run promptly
            pass
    finally:
        sim.stop()
    return 0
