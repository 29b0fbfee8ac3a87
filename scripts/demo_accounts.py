"""The simulators' account flags for scripts/demo, read from meltano.yml's `demo` environment,
so a vendor added there is served by the demo with no edit to scripts/demo.

    python scripts/demo_accounts.py http|https   # e.g. --accounts hq,branch --tencent-accounts callback
    python scripts/demo_accounts.py setup        # e.g. generic=hq,branch tencent=callback ...

Accounts whose api_url is https:// are served by the demo's TLS simulator, the others by the
plain one. Generic's flag is --accounts (the simulator serves generic demo accounts unless
told otherwise, so it is always given).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

SUFFIX = "_accounts"


def demo_accounts(meltano_yml: Path) -> dict[str, list[dict]]:
    project = yaml.safe_load(meltano_yml.read_text())
    [demo] = [env for env in project["environments"] if env["name"] == "demo"]
    [tap] = [p for p in demo["config"]["plugins"]["extractors"] if p["name"] == "tap-callcdr"]
    config = tap["config"]
    return {key[: -len(SUFFIX)]: config[key] for key in config if key.endswith(SUFFIX)}


def flags(accounts: dict[str, list[dict]], tls: bool) -> list[str]:
    served = {
        vendor: [a["name"] for a in listed if str(a["api_url"]).startswith("https://") == tls]
        for vendor, listed in accounts.items()
    }
    out = ["--accounts", ",".join(served.pop("generic", []))]
    for vendor, names in served.items():
        if names:
            out += [f"--{vendor}-accounts", ",".join(names)]
    return out


def main() -> None:
    accounts = demo_accounts(Path(__file__).resolve().parents[1] / "meltano.yml")
    what = sys.argv[1]
    if what == "setup":
        print(" ".join(f"{v}={','.join(a['name'] for a in listed)}" for v, listed in accounts.items()))
    else:
        print("\n".join(flags(accounts, tls=what == "https")))


if __name__ == "__main__":
    main()
