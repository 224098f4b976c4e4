"""``dinhdanh up``: the whole platform on its embedded default, under one supervisor.

Order: lock ``var/`` → CA and secrets → PostgreSQL → SeaweedFS S3 → migrations → registry seed (first
start) → each gRPC service as its own process → health checks over mutual TLS → demo citizen →
``var/stack.json``. ``supervise()`` then watches every process it started: a death is said at once and
the process is started again with back-off until it answers. ``stop()`` stops, in reverse order, exactly
the processes it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from db.migrate import upgrade
from issuance.judicial_store import seed_judicial_records
from registry.generator import generate
from registry.seeding import seed
from registry.store import PopulationStore
from stack import issuers, seaweed, web
from stack.info import StackInfo, shown
from stack.pki import PlatformCA
from stack.ports import HOST, Ports
from stack.postgres import EmbeddedPostgres, StackError
from stack.process import Backoff, ManagedProcess
from stack.provision import activate_with_totp
from stack.seaweed import SeaweedS3
from stack.secrets import SecretStore

LAYOUT = "1"
SERVICES = ("registry", "identity", "vault", "consent", "log", "judicial", "issuance", "health")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR = Path("var")


class PortsTaken(StackError):
    """Some of the ports this start needs are taken; the message says which, and what to run instead."""

    def __init__(self, busy: list[tuple[str, int]], var: Path, remembered: bool) -> None:
        self.busy = busy
        listed = ", ".join(f"{name} {port}" for name, port in busy)
        if remembered:
            advice = (
                f"{var} was first started on these ports (its portals' redirect URIs use them): stop what uses "
                f"them, or start a new stack elsewhere: `{up_command(var.parent / 'var-free-ports', True)}`"
            )
        else:
            advice = f"Stop what uses them, or run `{up_command(var, True)}`"
        super().__init__(f"ports already in use: {listed}. {advice}")


def up_command(var: Path, free_ports: bool) -> str:
    """The ``dinhdanh up`` command line for ``var`` (``--var`` only when it is not ``./var``)."""
    words = ["dinhdanh", "up"] + (["--free-ports"] if free_ports else [])
    if var.resolve() != DEFAULT_VAR.resolve():
        words += ["--var", shlex.quote(shown(var))]
    return " ".join(words)


@dataclass
class _Watched:
    """One process ``supervise()`` keeps running: how to find it, how to start it again until it answers."""

    label: str
    process: Callable[[], ManagedProcess | None]
    restart: Callable[[], Awaitable[None]]
    meaning: str = ""  # what its absence means, said with its death
    backoff: Backoff = field(default_factory=Backoff)


class Stack:
    def __init__(
        self,
        var: Path,
        ports: Ports | None = None,
        seed_count: int = 5000,
        fast_unsafe: bool = False,
        say: Callable[[str], None] = print,
        on_seed_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.var = var.resolve()
        self.ports = ports or Ports()
        self.seed_count = seed_count
        self.fast_unsafe = fast_unsafe
        self.say = say
        self.on_seed_progress = on_seed_progress
        self.ca = PlatformCA(self.var / "pki")
        self.secrets = SecretStore(self.var / "secrets")
        self.postgres: EmbeddedPostgres | None = None
        self.s3: SeaweedS3 | None = None
        self.services: dict[str, ManagedProcess] = {}
        self.info: StackInfo | None = None
        self._answers: dict[str, str] = {}  # web process → the URL that answers once it is up
        self._lock: int | None = None
        self._issuer_clients: dict[str, dict[str, str]] = {}  # stack/issuers.py: process → client id and secret

    @property
    def info_path(self) -> Path:
        return self.var / "stack.json"

    async def start(self) -> StackInfo:
        try:
            return await self._start()
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> StackInfo:
        self._prepare_var()
        remembered = self._remembered_ports()
        self.ports = remembered or self.ports
        busy = self.ports.taken()
        if busy:
            raise PortsTaken(busy, self.var, remembered is not None)
        self.ca.ensure()
        pg_password = self.secrets.token("postgres-password")
        s3_keys = self._s3_keys()
        self.postgres = EmbeddedPostgres(self.var / "postgres", self.ports.postgres, pg_password, self.fast_unsafe)
        self.s3 = SeaweedS3(self.var / "seaweedfs", self.ports, *s3_keys)
        self.say("starting PostgreSQL and SeaweedFS S3")
        await asyncio.to_thread(self.postgres.initdb)
        self.postgres.start()
        self.s3.start()
        await asyncio.gather(self.postgres.wait_ready(), self.s3.wait_ready())
        dsn = self.postgres.dsn()
        await asyncio.to_thread(upgrade, dsn)
        await self._seed(dsn)
        if self.secrets.ensure_keys():  # before the services that hold them start
            self.say("split var/secrets/identity.key into one key per purpose (var/secrets/keys/) and removed it")
        await self.postgres.enable_service_logins({s: self.secrets.database_password(s) for s in (*SERVICES, "edge")})
        self._issuer_clients = await issuers.register_issuers(self.secrets, dsn)  # before the issuers start
        for name in SERVICES:
            self._start_service(name, dsn)
        info = self._info(dsn)
        self.info = info
        await self._wait_healthy(info)
        info.demo_citizen = await self._demo_citizen(info)
        self._remember_ports()  # from here on, registrations (redirect URIs, the issuer) name these ports
        await self._start_web(info, dsn)
        from issuance import demo_issuer  # PDFs and their signatures: imported by a start, not by every CLI command
        from issuance.health import demo as health_demo

        papers = await demo_issuer.set_up(self.ca, self.secrets, dsn, info, self.say)  # issue 11 item 5
        if papers:
            info.clients["issuer_demo"] = papers
        await health_demo.push_demo_visits(info, self.say)  # issue 11 item 4: the demo citizen's health book
        info.save(self.info_path)
        return info

    async def _start_web(self, info: StackInfo, dsn: str) -> None:
        """The edge (OpenID Provider), then the demo portals registered as its clients."""
        edge = web.start_edge(self.ca, self.secrets, self.ports, self._service_dsn("edge"), self.var)
        self.services["edge"] = edge
        info.oidc_issuer = web.issuer(self.ports)
        self._answers["edge"] = f"{info.oidc_issuer}/.well-known/openid-configuration"
        await web.wait_http(edge, self._answers["edge"])
        clients = await web.demo_clients(self.secrets, self.ports, dsn)
        for name, title in web.PORTALS:
            self.services[name] = web.start_portal(
                name, title, clients[name], self.secrets, self.ports, self.var, ca=self.ca
            )
            self._answers[name] = f"{clients[name]['base_url']}/"
        for name, _ in web.PORTALS:
            await web.wait_http(self.services[name], self._answers[name])
        info.demo_portal = clients["portal"]["base_url"]
        info.demo_portal_2 = clients["portal_2"]["base_url"]
        info.clients = {
            name: {
                "client_id": c["client_id"],
                "client_secret": c["client_secret"],
                "redirect_uris": [f"{c['base_url']}/callback"],
            }
            for name, c in clients.items()
        }
        info.clients |= await web.demo_agencies(self.ca, self.secrets, dsn)  # agency_demo, officer_demo …

    def _prepare_var(self) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.var / "stack.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `dinhdanh up` is running on {self.var}; stop it first (Ctrl-C)") from None
        layout = self.var / "LAYOUT"
        if not layout.exists():
            if any(p.name not in ("stack.lock",) for p in self.var.iterdir()):
                raise StackError(f"{self.var} holds files this version did not write; move it aside and run again")
            layout.write_text(LAYOUT)
        elif layout.read_text().strip() != LAYOUT:
            raise StackError(
                f"{self.var} was written by another version (layout {layout.read_text().strip()}, "
                f"this one needs {LAYOUT}); move it aside (`mv var var.old`) and run again"
            )
        self.info_path.unlink(missing_ok=True)  # written again once everything answers

    def _remembered_ports(self) -> Ports | None:
        """The ports of the first start that got far enough to register the portals (whose redirect URIs
        and issuer URL name them); ``None`` before that, so a failed first start leaves no choice behind."""
        path = self.var / "ports.json"
        return Ports(**json.loads(path.read_text())) if path.exists() else None

    def _remember_ports(self) -> None:
        path = self.var / "ports.json"
        if not path.exists():
            path.write_text(json.dumps(asdict(self.ports)))

    def _s3_keys(self) -> tuple[str, str]:
        keys = self.secrets.json("s3.json")
        if keys is None:
            keys = {
                "access_key": "dinhdanh" + self.secrets.token("s3-access", 6).upper(),
                "secret_key": self.secrets.token("s3-secret", 30),
            }
            self.secrets.put_json("s3.json", keys)
        return keys["access_key"], keys["secret_key"]

    async def _seed(self, dsn: str) -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            store = PopulationStore(pool)
            if await store.count() == 0:
                self.say(f"seeding the population registry with {self.seed_count:,} citizens")
                done = 0

                def tick(n: int) -> None:
                    nonlocal done
                    done += n
                    if self.on_seed_progress:
                        self.on_seed_progress(done, self.seed_count)

                await seed(store, self.seed_count, progress=tick)
            if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM judicial.convictions)"):
                self.say("seeding the judicial records (the demo citizen's is clean)")
                stored = (self.secrets.json("demo-citizen.json") or {}).get("id_number")
                demo = {next(iter(generate(1))).id_number, *([stored] if stored else [])}  # see _demo_citizen
                await seed_judicial_records(pool, await store.all(), clean=demo)
        finally:
            await pool.close()

    def _service_dsn(self, name: str) -> str:
        """``name``'s own database role: its schemas only (migration 0011)."""
        assert self.postgres is not None
        return self.postgres.service_dsn(name, self.secrets.database_password(name))

    def _start_service(self, name: str, dsn: str) -> None:
        paths = self.ca.issue(name)
        env = {
            **os.environ,
            "DINHDANH_LISTEN": f"{HOST}:{getattr(self.ports, name)}",
            "DINHDANH_METRICS_LISTEN": f"{HOST}:{self.ports.metrics(name)}",
            "DINHDANH_POSTGRES_DSN": self._service_dsn(name),
            "DINHDANH_TLS_CA": str(paths.ca),
            "DINHDANH_TLS_CERT": str(paths.cert),
            "DINHDANH_TLS_KEY": str(paths.key),
            "DINHDANH_REGISTRY_ADDRESS": f"{HOST}:{self.ports.registry}",
            "DINHDANH_CONSENT_ADDRESS": f"{HOST}:{self.ports.consent}",
            "DINHDANH_LOG_ADDRESS": f"{HOST}:{self.ports.log}",
            "DINHDANH_VAULT_ADDRESS": f"{HOST}:{self.ports.vault}",
            "DINHDANH_JUDICIAL_ADDRESS": f"{HOST}:{self.ports.judicial}",
            "DINHDANH_ISSUANCE_ADDRESS": f"{HOST}:{self.ports.issuance}",
            "DINHDANH_HEALTH_ADDRESS": f"{HOST}:{self.ports.health}",
            "DINHDANH_KEYS_DIR": str(self.secrets.keys_dir(name)),
            "DINHDANH_ISSUER": web.issuer(self.ports),
        }
        env |= issuers.issuer_env(name, self._issuer_clients)  # issuance, health: their vault.issue clients
        if name == "issuance":  # its document-signing certificate (PAdES), issued by the platform CA
            env |= issuers.document_env(self.ca, self.secrets)
        if name == "consent":  # agencies on this machine may take notifications over plain http to loopback
            env["DINHDANH_CONSENT_NOTIFY_LOOPBACK_HTTP"] = "true"
        if name in ("vault", "log"):  # the vault's documents; the log's tiles, with a pair for its bucket only
            assert self.s3 is not None
            access, secret = self.s3.access_key, self.s3.secret_key
            if name == "log":
                access, secret = seaweed.log_writer_keys(access, secret)
            env |= {
                "DINHDANH_S3_ENDPOINT": self.s3.endpoint,
                "DINHDANH_S3_ACCESS_KEY": access,
                "DINHDANH_S3_SECRET_KEY": secret,
            }
        process = ManagedProcess(name, [sys.executable, "-m", "services", name], self.var / "logs" / f"{name}.log", env)
        process.start()
        self.services[name] = process

    def _info(self, dsn: str) -> StackInfo:
        operator = self.ca.issue("operator", operator=True)
        assert self.s3 is not None
        return StackInfo(
            services={name: f"{HOST}:{getattr(self.ports, name)}" for name in SERVICES},
            tls={key: shown(Path(value)) for key, value in operator.as_dict().items()},
            postgres_dsn=dsn,
            s3_endpoint=f"http://{self.s3.endpoint}",
            s3_credentials=shown(self.secrets.path("s3.json")),
            metrics={
                name: f"http://{HOST}:{self.ports.metrics(name)}/metrics"
                for name in (*SERVICES, "edge", *(portal for portal, _ in web.PORTALS))
            },
        )

    async def _wait_healthy(self, info: StackInfo, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        for name in SERVICES:
            await self._wait_service(info, name, deadline)

    async def _wait_service(self, info: StackInfo, name: str, deadline: float) -> None:
        """Until ``name`` answers its health check over mutual TLS as ``SERVING``."""
        loop = asyncio.get_running_loop()
        async with info.channel(name) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                process = self.services[name]
                if not process.alive():
                    raise StackError(f"service {name} exited on start:\n{process.tail()}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except Exception:  # noqa: S110 - not listening yet
                    pass
                if loop.time() > deadline:
                    raise StackError(f"service {name} did not become healthy:\n{process.tail()}")
                await asyncio.sleep(0.2)

    async def _demo_citizen(self, info: StackInfo) -> dict[str, str]:
        demo = self.secrets.json("demo-citizen.json")
        if demo is None:
            id_number = next(iter(generate(1))).id_number
            password = "Demo-" + self.secrets.token("demo-password", 12)
            async with info.channel("registry") as registry, info.channel("identity") as identity:
                secret = await activate_with_totp(registry, identity, id_number, password)
            demo = {"id_number": id_number, "password": password, "totp_secret": secret}
            self.secrets.put_json("demo-citizen.json", demo)
        return demo

    # -- supervision -------------------------------------------------------------------------------

    async def supervise(self, stop: asyncio.Event, every: float = 0.25) -> None:
        """Until ``stop`` is set: every process this stack started is watched; a death is said at once (with
        what it means for the platform), and the process is started again after a back-off (0.5 s, doubling
        up to 30 s while restarts fail) until it answers again. Returns with no restart left in progress."""
        watched = self._watched()
        reviving: dict[str, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                for item in watched:
                    process = item.process()
                    if item.label not in reviving and process is not None and not process.alive():
                        reviving[item.label] = asyncio.create_task(self._revive(item, process))
                for label in [label for label, task in reviving.items() if task.done()]:
                    reviving.pop(label).result()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
        finally:
            for task in reviving.values():
                task.cancel()
            await asyncio.gather(*reviving.values(), return_exceptions=True)

    def _watched(self) -> list[_Watched]:
        watched = [
            _Watched("PostgreSQL", lambda: self.postgres.process if self.postgres else None, self._restart_postgres,
                     ": no service can reach the database until it is back"),
            _Watched("SeaweedFS", lambda: self.s3.process if self.s3 else None, self._restart_s3,
                     ": the vault cannot store or read documents until it is back"),
        ]  # fmt: skip
        for name in self.services:
            watched.append(_Watched(name, lambda name=name: self.services.get(name), self._restarter(name)))
        return watched

    async def _revive(self, item: _Watched, process: ManagedProcess) -> None:
        loop = asyncio.get_running_loop()
        item.backoff.died(loop.time())
        delay = item.backoff.next_delay()
        self.say(f"{item.label} died ({process.how_it_ended()}){item.meaning}; restarting in {delay:g} s")
        while True:
            await asyncio.sleep(delay)
            try:
                await item.restart()
            except (StackError, OSError) as error:
                delay = item.backoff.next_delay()
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                self.say(f"{item.label} did not come back ({first_line}); restarting in {delay:g} s")
                continue
            item.backoff.started(loop.time())
            revived = item.process()
            self.say(f"{item.label} restarted (pid {revived.pid if revived else '?'}) and answers again")
            return

    def _restarter(self, name: str) -> Callable[[], Awaitable[None]]:
        async def restart() -> None:
            process = self.services[name]
            if process.alive():
                process.stop()
            process.start()
            deadline = asyncio.get_running_loop().time() + 60
            if name in SERVICES:
                assert self.info is not None
                await self._wait_service(self.info, name, deadline)
            else:
                await web.wait_http(process, self._answers[name])

        return restart

    async def _restart_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.start()
        await self.postgres.wait_ready()

    async def _restart_s3(self) -> None:
        assert self.s3 is not None
        if self.s3.process is not None and self.s3.process.alive():
            self.s3.stop()
        self.s3.start()
        await self.s3.wait_ready()

    def stop(self) -> None:
        """Stop what this supervisor started, newest first; nothing else."""
        for process in reversed(self.services.values()):
            process.stop()
        self.services.clear()
        stores = [store for store in (self.s3, self.postgres) if store is not None]
        with ThreadPoolExecutor(len(stores) or 1) as pool:  # independent: stop both at once
            list(pool.map(lambda store: store.stop(), stores))
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
