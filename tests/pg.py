"""A throwaway PostgreSQL server for the test session.

``start_postgres()`` runs ``initdb`` into a fresh temporary directory, starts ``postgres``
on 127.0.0.1 on a free port (trust auth: for local tests only), creates a database and
returns a :class:`PostgresServer`; ``server.stop()`` stops it and removes the directory.

PostgreSQL refuses to run as root, so when the tests run as root every server command
runs as the ``postgres`` OS user (via ``runuser``, or ``su`` where runuser is missing) and
the temporary directory is handed to that user. Not root: the commands run directly.

Binaries are found through ``$PG_BINDIR``, ``pg_config --bindir``,
``/usr/lib/postgresql/*/bin`` (newest first) or ``initdb`` on ``PATH``. When none is
found, :class:`PostgresUnavailable` says how to install them: callers turn that into a
test failure, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "Install the PostgreSQL 15 server (Debian/Ubuntu: `apt-get install -y postgresql-15`), "
    "or point $PG_BINDIR at a directory holding initdb, pg_ctl and postgres."
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries (or the OS user to run them) cannot be found."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_bindir() -> Path:
    """Directory holding initdb, pg_ctl and postgres, or raise PostgresUnavailable."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)[::-1]
    ]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for bindir in candidates:
        if _has_server_binaries(bindir):
            return bindir
    looked = ", ".join(str(c) for c in candidates) or "nothing found"
    raise PostgresUnavailable(
        f"PostgreSQL server binaries {SERVER_BINARIES} not found (looked in: {looked}). "
        + INSTALL_HINT
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway server. ``url`` is a libpq/psycopg connection URL."""

    bindir: Path
    basedir: Path
    port: int
    dbname: str
    host: str = "127.0.0.1"
    user: str = "postgres"
    password: str = "unused-trust-auth"  # for clients that insist on one; trust auth ignores it
    _runner: list[str] = field(default_factory=list, repr=False)

    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def logfile(self) -> Path:
        return self.basedir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def target_env(self, schema: str) -> dict[str, str]:
        """target-postgres' settings for this server, as Meltano environment variables."""
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            # target-postgres insists on a password; the throwaway server trusts 127.0.0.1
            "TARGET_POSTGRES_PASSWORD": self.password,
            "TARGET_POSTGRES_DATABASE": self.dbname,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def meltano_database_uri(self, dbname: str) -> str:
        """`MELTANO_DATABASE_URI` of database `dbname` here: Meltano 4.4 takes SQLAlchemy's
        psycopg 3 dialect (the dev extras' driver); a plain postgresql:// wants psycopg2."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run_as(self._runner, argv, timeout=timeout)

    def create_database(self, dbname: str) -> None:
        self._run(
            [
                str(self.bindir / "createdb"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                dbname,
            ]
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "60",
                        "stop",
                    ],
                    timeout=90,
                )
        finally:
            shutil.rmtree(self.basedir, ignore_errors=True)


def _runner_prefix() -> list[str]:
    """Command prefix that runs a program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable(
            "Running as root, and PostgreSQL refuses to run as root, but there is no "
            "`postgres` OS user to run it as. " + INSTALL_HINT
        ) from exc
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"]
    return ["su", "postgres", "-s", "/bin/sh", "-c"]  # the argv is joined into one string


def _run_as(prefix: list[str], argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [*prefix, shlex.join(argv)] if prefix[:1] == ["su"] else [*prefix, *argv]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    for var in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE"):
        env.pop(var, None)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/", check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {shlex.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def _can_traverse(runner: list[str], path: str) -> bool:
    try:
        _run_as(runner, ["test", "-x", path], timeout=30)
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return False
    return True


def start_postgres(
    dbname: str = "callcdr_test", tmp_root: str | None = None, timezone: str = "UTC"
) -> PostgresServer:
    """initdb + start a server on 127.0.0.1:<free port>, create ``dbname``, return it.

    ``timezone`` is the server's default session TimeZone.
    """
    bindir = find_bindir()
    runner = _runner_prefix()
    root = tmp_root or os.environ.get("CALLCDR_PG_TMPDIR") or tempfile.gettempdir()
    if runner and not _can_traverse(runner, root):
        root = "/tmp"  # e.g. TMPDIR under /root: the postgres user could not reach its data
    basedir = Path(tempfile.mkdtemp(prefix="callcdr-pg-", dir=root))
    if runner:  # root: hand the directory to the postgres user
        pw = pwd.getpwnam("postgres")
        os.chown(basedir, pw.pw_uid, pw.pw_gid)
    os.chmod(basedir, 0o700)

    server = PostgresServer(bindir=bindir, basedir=basedir, port=0, dbname=dbname, _runner=runner)
    try:
        server._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(server.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=180,
        )
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port can be taken between probe and bind
            server.port = free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {server.port}",
                    f"-k {basedir}",  # unix socket in our own dir, not /var/run/postgresql
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                    f"-c timezone={timezone} -c log_timezone=UTC",
                    "-c max_connections=50",
                ]
            )
            try:
                server._run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(server.datadir),
                        "-l",
                        str(server.logfile),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    timeout=90,
                )
                break
            except RuntimeError as exc:
                last_error = exc
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{last_error}\n--- server log ---\n{server.log_tail()}")
        server.create_database(dbname)
    except BaseException:
        server.stop()
        raise
    return server
