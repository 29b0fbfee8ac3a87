"""The sharded pipeline as a Dagster job: one Meltano extract-load per shard of the accounts.

    export DAGSTER_HOME=$PWD/.dagster   # the multiprocess executor needs an instance
    dagster job execute -f orchestrate/definitions.py -j sharded_pipeline -c shards.yaml

with shards.yaml holding `ops: {shards: {config: {shard_count: 3}}}`. The shard count is run
config, so re-sharding is a config change: each shard's state id is its own
(`<environment>:tap-callcdr-to-<loader>:shard-<i>-of-<N>`) and is seeded from the bookmarks
of the old layout before its first run (orchestrate/shard_state.py). Plain ops calling the
`meltano` CLI, not dagster-meltano (pyproject.toml says why); docs/scale.md has the rest.
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations (config, resource
# and input types) at definition time, and cannot resolve them from strings.
import collections
import os
import shutil
import subprocess
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from orchestrate.shard_state import seed

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXTRACTOR = "tap-callcdr"


class ShardsConfig(dg.Config):
    shard_count: int = 1  # how many shards (concurrent extract-loads) split the accounts


class Meltano(dg.ConfigurableResource):
    """The Meltano project every shard runs in, and how to run it."""

    project_dir: str = str(PROJECT_DIR)
    loader: str = "target-postgres"
    # "" = $MELTANO_ENVIRONMENT, else "dev"; it is part of every shard's state id
    environment: str = ""
    # "" = the meltano beside this Python (same venv), else the one on PATH
    executable: str = ""
    tail_lines: int = 40  # how much of a failed run's output the failure shows

    def environment_name(self) -> str:
        return self.environment or os.environ.get("MELTANO_ENVIRONMENT") or "dev"

    def command(self) -> str:
        if self.executable:
            return self.executable
        beside = Path(sys.executable).with_name("meltano")
        return str(beside) if beside.exists() else (shutil.which("meltano") or "meltano")

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "MELTANO_ENVIRONMENT": self.environment_name(), **extra}

    def cli(self, *args: str, env: dict[str, str]) -> tuple[int, list[str]]:
        """`meltano <args>` in the project; its exit code and last `tail_lines` lines."""
        return stream_output([self.command(), *args], cwd=self.project_dir, env=env, keep=self.tail_lines)

    def state_id(self, suffix: str) -> str:
        """What `meltano run --state-id-suffix` names it: <environment>:<tap>-to-<loader>:<suffix>."""
        return f"{self.environment_name()}:{EXTRACTOR}-to-{self.loader}:{suffix}"


def suffix(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


@dg.op(out=dg.DynamicOut(tuple))
def shards(config: ShardsConfig, meltano: Meltano) -> Iterator[dg.DynamicOutput[tuple[int, int]]]:
    """Fan out: one (index, count) per shard, each mapped to its own `run_shard` step."""
    if config.shard_count < 1:
        raise dg.Failure(f"ops.shards.config.shard_count must be at least 1, not {config.shard_count}",
                         allow_retries=False)  # fmt: skip
    # Meltano creates or migrates its system database on first use: once here, for N shards
    # starting at once on a new database each run alembic's CREATE TABLE alembic_version, and
    # all but one fail (UniqueViolation, then "Cannot upgrade the system database").
    code, tail = meltano.cli("state", "list", env=meltano.env())
    if code != 0:
        raise dg.Failure("`meltano state list` (its system database) failed:\n" + "".join(tail))
    for index in range(config.shard_count):
        yield dg.DynamicOutput((index, config.shard_count), mapping_key=f"shard_{index}")


# A shard that fails (a vendor down, a loader's hiccup) is retried alone; it resumes from its
# own last saved state. Environment overrides: short waits in tests, longer for a real outage.
def _number(name: str, default: str, kind: type[int] | type[float]) -> t.Any:
    """An environment override, or one line naming it (this module loads in Dagster's CLI)."""
    text = os.environ.get(name, default)
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if value < 0:
        raise SystemExit(f"error: {name}={text!r}: give a number of at least 0 ({kind.__name__})")
    return value


RETRY = dg.RetryPolicy(
    max_retries=_number("CALLCDR_SHARD_RETRIES", "2", int),
    delay=_number("CALLCDR_SHARD_RETRY_DELAY", "30", float),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


@dg.op(retry_policy=RETRY)
def run_shard(context: dg.OpExecutionContext, meltano: Meltano, shard: tuple[int, int]) -> str:
    """Seed this shard's state id, then run the shard's extract-load; its state id is what it
    returns."""
    index, count = shard
    name = suffix(index, count)
    env = meltano.env(TAP_CALLCDR_SHARD_INDEX=str(index), TAP_CALLCDR_SHARD_COUNT=str(count))
    state_id = meltano.state_id(name)
    seeded = seed(state_id, project_dir=Path(meltano.project_dir), env=env)
    if seeded.changed:
        context.log.info(f"{name}: state seeded from {', '.join(seeded.merged_from)}")
    # `meltano el`, not `meltano run --state-id-suffix`: the same state id, but `run` writes every
    # run's catalog to the one .meltano/run/tap-callcdr/tap.properties.json, which concurrent
    # shards overwrite under each other ("Invalid catalog"; meltano/meltano#8763, open in 4.4);
    # `el` gives each run a directory of its own (.meltano/run/elt/<state id>/<run id>).
    args = ("el", "--state-id", state_id, EXTRACTOR, meltano.loader)
    context.log.info(f"{name}: meltano {' '.join(args)}")
    code, tail = meltano.cli(*args, env=env)
    if code != 0:  # meltano's last lines; the tap masks secrets in its own output already
        raise dg.Failure(
            description=f"{name}: `meltano el` exited {code}; its last lines:\n" + "".join(tail),
            metadata={"state_id": state_id, "exit_code": code},
        )
    return state_id


def stream_output(argv: list[str], *, cwd: str, env: dict[str, str], keep: int) -> tuple[int, list[str]]:
    """Run argv passing its output through (the step's compute log); the exit code and the
    last `keep` lines."""
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    except FileNotFoundError:
        hint = "pip install 'tap-callcdr[orchestrate]', or set resources.meltano.config.executable"
        raise dg.Failure(f"`{argv[0]}` not found: {hint}", allow_retries=False) from None
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            tail.append(line)
    return proc.returncode, list(tail)


@dg.job(executor_def=dg.multiprocess_executor)
def sharded_pipeline() -> None:
    """Every shard's `meltano run tap-callcdr <loader>`, each in its own process."""
    shards().map(run_shard)


defs = dg.Definitions(jobs=[sharded_pipeline], resources={"meltano": Meltano()})
