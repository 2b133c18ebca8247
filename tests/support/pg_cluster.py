"""A throwaway PostgreSQL cluster for the tests, and the pytest fixtures around it.

One cluster per test run: `initdb` into a temporary folder, a server on
127.0.0.1 with a free port and its Unix socket inside that folder, `fsync` on
(the durability tests crash it and count on the WAL), and a password only
this run knows. PostgreSQL refuses to run as root, so when the tests run as
root the server's commands run as an unprivileged user (`postgres` when the
Debian packages created it, else `nobody`) who owns the folder.

`EXECGATE_TEST_PG_DSN` (a URL to a server where the user may create
databases) replaces the throwaway cluster. Without either, PostgreSQL tests
skip, except under `CI=true`, where they fail: CI always has PostgreSQL.

Fixtures (import them into a conftest.py to use them), each also a plain
function for code that cannot declare fixtures:
- `pg_server` / `shared_server(config)`: the server, started once per run;
- `pg_database_url` / `shared_database_url(config)`: a database created for
  this run, dropped when it ends;
- `pg_store_url` / `fresh_schema_url(request)`: a fresh, empty schema in that
  database, as a store URL whose `search_path` points at it; dropped after
  the test;
- `own_pg_cluster` (fixture only): a cluster of the test module's own, for
  tests that stop or crash the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import pytest

PG_DSN_ENV = "EXECGATE_TEST_PG_DSN"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "execgate"
_UNPRIVILEGED_USERS = ("postgres", "nobody")
_START_TIMEOUT_S = 60

StopMode = Literal["smart", "fast", "immediate"]
T = TypeVar("T")


def find_server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: on PATH, else Debian's layout."""
    on_path = [shutil.which(name) for name in SERVER_BINARIES]
    if all(on_path):
        return Path(str(on_path[0])).resolve().parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for folder in reversed(debian):
        if all((folder / name).exists() for name in SERVER_BINARIES):
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    """One initdb'd data folder and the server that runs on it."""

    bin_dir: Path
    root: Path  # temporary folder: data/, sockets/, server.log
    password: str
    run_as: pwd.struct_passwd | None  # None: we are not root, run as ourselves
    port: int = field(default_factory=free_port)

    @classmethod
    def create(cls, bin_dir: Path) -> PgCluster:
        run_as = _unprivileged_user() if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="execgate-pg-"))
        cluster = cls(bin_dir, root, secrets.token_urlsafe(18), run_as)
        try:
            cluster._init()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(database, safe='')}"
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections (a new port if ours is taken)."""
        for _ in range(3):
            result = self._pg_ctl(
                "start",
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
                check=False,
            )
            if result.returncode == 0:
                return
            if "could not bind" not in self.log_tail():
                break
            self.port = free_port()  # lost a race for the port: try another
        raise RuntimeError(f"PostgreSQL did not start:\n{result.stdout}\n{self.log_tail()}")

    def stop(self, mode: StopMode = "fast") -> None:
        """`immediate` is a crash as far as the data goes: the next start replays the WAL."""
        result = self._pg_ctl("stop", "-w", "-t", str(_START_TIMEOUT_S), "-m", mode, check=False)
        # A retried stop (see `_run`) finds the server already gone: that is success too.
        if result.returncode != 0 and self.is_running():
            raise RuntimeError(f"pg_ctl stop failed ({result.returncode}):\n{result.stderr}")

    def is_running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def destroy(self) -> None:
        if self.data_dir.joinpath("postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"

    def _init(self) -> None:
        (self.root / "sockets").mkdir()
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if self.run_as is not None:
            for path in (self.root, self.root / "sockets", password_file):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run(
            self.bin_dir / "initdb", "-D", str(self.data_dir), "-U", SUPERUSER,
            f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--no-locale", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root / 'sockets'}'",
            # The durability tests crash the server and count on these.
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# execgate test cluster\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.bin_dir / "pg_ctl", "-D", str(self.data_dir), *args, check=check)

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self.run_as
        for _ in range(3):
            result = subprocess.run(
                [str(arg) for arg in args],
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_S + 30,
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
                extra_groups=None if user is None else [],
                env={**os.environ, "HOME": str(self.root), "LC_ALL": "C"},
            )
            # Seen once: the child died of SIGSEGV (the test process forks
            # while gRPC threads run, and gRPC skips its fork handlers). Run it again.
            if result.returncode >= 0:
                break
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{Path(str(args[0])).name} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.log_tail()}"
            )
        return result


def _unprivileged_user() -> pwd.struct_passwd:
    for name in _UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"running as root, and none of the users {_UNPRIVILEGED_USERS} exists")


def with_database(url: str, database: str, **query: str) -> str:
    """`url` pointing at another database, with extra query parameters."""
    parts = urlsplit(url)
    extra = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    merged = "&".join(q for q in (parts.query, extra) if q)
    return urlunsplit(parts._replace(path="/" + quote(database, safe=""), query=merged))


def in_own_loop(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async job to completion from synchronous code (a fixture, a
    finalizer), on a thread and event loop of its own, so that it never meets
    the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, job()).result()


def run_sql(url: str, *statements: str) -> None:
    """Run fixed admin statements (CREATE/DROP DATABASE, SCHEMA) from synchronous code."""

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement, timeout=60)
        finally:
            await conn.close()

    in_own_loop(run)


@dataclass(frozen=True)
class PgServer:
    """The server the PostgreSQL tests use; `cluster` is None for an external one."""

    admin_url: str  # may create and drop databases
    cluster: PgCluster | None


_SERVER = pytest.StashKey[PgServer]()
_DATABASE_URL = pytest.StashKey[str]()


def shared_server(config: pytest.Config) -> PgServer:
    """The run's server: started on first use, stopped when the run ends.

    Plain functions (not only fixtures) so that code that cannot declare
    fixtures, like the contract suite's backend list, can reach them.
    """
    if _SERVER in config.stash:
        return config.stash[_SERVER]
    external = os.environ.get(PG_DSN_ENV)
    if external:
        server = PgServer(external, None)
    else:
        bin_dir = find_server_binaries()
        if bin_dir is None:
            reason = (
                f"no PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) on PATH or under "
                f"/usr/lib/postgresql/*/bin, and {PG_DSN_ENV} is not set"
            )
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(
                    f"{reason}; CI must run the PostgreSQL tests (apt-get install postgresql)"
                )
            pytest.skip(reason)
        cluster = PgCluster.create(bin_dir)
        config.add_cleanup(cluster.destroy)
        cluster.start()
        server = PgServer(cluster.url(), cluster)
    config.stash[_SERVER] = server
    return server


def shared_database_url(config: pytest.Config) -> str:
    """A database created for this run on the run's server; dropped when the run ends."""
    if _DATABASE_URL in config.stash:
        return config.stash[_DATABASE_URL]
    server = shared_server(config)
    name = f"execgate_test_{secrets.token_hex(6)}"
    run_sql(server.admin_url, f'CREATE DATABASE "{name}"')

    def drop() -> None:
        if server.cluster is None or server.cluster.is_running():
            run_sql(server.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    config.add_cleanup(drop)  # cleanups run last-in first-out: before the cluster stops
    config.stash[_DATABASE_URL] = url = with_database(server.admin_url, name)
    return url


def fresh_schema_url(request: pytest.FixtureRequest) -> str:
    """A store URL whose every table lands in a new, empty schema, dropped when
    `request`'s fixture or test ends (asyncpg sends unknown URL parameters,
    here `search_path`, as server settings)."""
    database_url = shared_database_url(request.config)
    schema = f"t_{secrets.token_hex(6)}"
    run_sql(database_url, f'CREATE SCHEMA "{schema}"')
    request.addfinalizer(lambda: run_sql(database_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    database = unquote(urlsplit(database_url).path.lstrip("/"))
    return with_database(database_url, database, search_path=schema)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    return shared_server(request.config)


@pytest.fixture(scope="session")
def pg_database_url(request: pytest.FixtureRequest) -> str:
    return shared_database_url(request.config)


@pytest.fixture
def pg_store_url(request: pytest.FixtureRequest) -> str:
    return fresh_schema_url(request)


@pytest.fixture(scope="module")
def own_pg_cluster(request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """A cluster of this module's own, for tests that stop or crash the server.

    `shared_server` first applies the skip-or-fail rule when there is no
    PostgreSQL at all; with only an external server (EXECGATE_TEST_PG_DSN),
    which a test must not stop, these tests skip.
    """
    shared_server(request.config)
    bin_dir = find_server_binaries()
    if bin_dir is None:
        pytest.skip("stopping the server needs local PostgreSQL binaries (initdb, pg_ctl)")
    cluster = PgCluster.create(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
