"""``python -m services.edge``: the HTTP edge under uvicorn, settings from ``DINHDANH_*``.

Two servers in one process and one event loop: the edge on ``DINHDANH_LISTEN``, and, when
``DINHDANH_MTLS_LISTEN`` is set, its mutual-TLS endpoints (RFC 8705 §5) with the edge's certificate, requiring a
client certificate from the platform CA (``DINHDANH_TLS_CA``) and handing it to the app
(``http.ClientCertificateProtocol``). The mTLS server starts once the edge's lifespan has made the provider they
share; SIGTERM or SIGINT stops both.

The mTLS socket is bound first (a taken port fails the start at once, with the address) and with
``SO_REUSEPORT``, so replicas of the edge on one host share it as they share nothing else (the kernel spreads
connections between them; only sockets of the same user that set the option too can join).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Iterator

import uvicorn
import uvloop

from core import logs, metrics, request_id, tracing
from core.settings import Settings
from services.edge.app import create_apps
from services.edge.http import ClientCertificateProtocol

COMMON = {"access_log": False, "log_level": "warning", "server_header": False, "proxy_headers": False}


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve`` (two servers must not each take them over) and says when
    it has started (lifespan done, socket bound)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


def bind_shared(address: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other edge processes of this user may bind too."""
    host, port = address.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as error:
        sock.close()
        raise SystemExit(f"edge: cannot listen for mutual TLS on {address}: {error.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(settings: Settings) -> None:
    tls_socket = bind_shared(settings.mtls_listen) if settings.mtls_listen else None
    main_app, tls_app = create_apps(settings)
    tracing.setup("edge", settings.tracing)
    metrics.serve(settings.metrics_listen)
    observed = metrics.asgi(request_id.asgi(tracing.asgi(main_app)), "edge")
    host, port = settings.listen.rsplit(":", 1)
    plain = _Server(uvicorn.Config(observed, host=host, port=int(port), http="httptools", lifespan="on", **COMMON))
    servers = [plain]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [setattr(s, "should_exit", True) for s in servers])
    first = asyncio.create_task(plain.serve())
    if tls_socket is None:
        await first
        return
    ready = asyncio.create_task(plain.ready.wait())  # the provider first: the mTLS app uses the same one
    await asyncio.wait({first, ready}, return_when=asyncio.FIRST_COMPLETED)
    if first.done() or not plain.started:
        ready.cancel()
        await first
        return
    observed_tls = metrics.asgi(request_id.asgi(tracing.asgi(tls_app)), "edge-mtls")
    tls = _Server(uvicorn.Config(
        observed_tls, http=ClientCertificateProtocol, lifespan="off",
        ssl_certfile=str(settings.tls_cert), ssl_keyfile=str(settings.tls_key), ssl_ca_certs=str(settings.tls_ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED, **COMMON,
    ))  # fmt: skip
    servers.append(tls)
    second = asyncio.create_task(tls.serve(sockets=[tls_socket]))
    await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:  # one ended (a signal, or a failure): the other follows
        server.should_exit = True
    await asyncio.gather(first, second)


def main() -> None:
    settings = Settings()
    logs.configure("edge", settings.log_level)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
