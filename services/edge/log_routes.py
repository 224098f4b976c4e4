"""The transparency log served read-only at the edge, from its S3 bucket (C2SP tlog-tiles "APIs").

- ``GET /log/checkpoint``: the latest signed checkpoint, ``text/plain; charset=utf-8``, cached a second or two
  (tlog-tiles "Checkpoints": mutable, no caching beyond a few seconds).
- ``GET /log/tile/<L>/<N>[.p/<W>]`` and ``GET /log/tile/entries/<N>[.p/<W>]``: tiles and entry bundles,
  ``application/octet-stream``; full ones are immutable (cached a year), partial ones briefly.
- ``GET /log/key``: the log's verifier key (c2sp.org/signed-note "Verifier keys"), what an outside monitor
  checks checkpoints with.

Paths are checked against the exact tlog-tiles grammar (audit/tiles.py ``parse_path``) before any S3 request,
so nothing but those objects can be named (no traversal, no listing). The edge holds only the log bucket's
read-only S3 pair. A missing object is 404, S3 unreachable 503.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from audit import tiles
from audit.s3_tiles import S3Tiles
from audit.sequencer import CHECKPOINT, VKEY, TileStoreError
from core.settings import Settings
from services.log_settings import LogSettings
from vault.objects import s3_client

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=10"
MUTABLE = "public, max-age=1"
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"


class LogFiles:
    """The log's files in S3; the store is made from the process's settings on the first request."""

    def __init__(self, store: S3Tiles | None = None) -> None:
        self._store = store
        self._ready = store is not None

    def _opened(self) -> S3Tiles | None:
        if not self._ready:
            settings = Settings()
            if settings.s3_endpoint:
                client = s3_client(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                                   settings.s3_secure)  # fmt: skip
                self._store = S3Tiles(client, LogSettings().bucket)
            self._ready = True
        return self._store

    async def _serve(self, name: str, content_type: str, cache: str) -> Response:
        store = self._opened()
        if store is None:
            return PlainTextResponse("the log is not served here\n", 404, headers={"Cache-Control": "no-store"})
        try:
            data = await store.get(name)
        except TileStoreError:
            return PlainTextResponse("the log's store is unavailable\n", 503, headers={"Retry-After": "1"})
        if data is None:
            return PlainTextResponse("not found\n", 404, headers={"Cache-Control": "no-store"})
        return Response(data, headers={"Content-Type": content_type, "Cache-Control": cache,
                                       "X-Content-Type-Options": "nosniff"})  # fmt: skip

    async def checkpoint(self, request: Request) -> Response:
        return await self._serve(CHECKPOINT, TEXT, MUTABLE)

    async def key(self, request: Request) -> Response:
        return await self._serve(VKEY, TEXT, "public, max-age=300")

    async def tile(self, request: Request) -> Response:
        path = "tile/" + request.path_params["rest"]
        try:
            parsed = tiles.parse_path(path)
        except tiles.TileError:
            return PlainTextResponse("not found\n", 404, headers={"Cache-Control": "no-store"})
        return await self._serve(str(parsed), BINARY, PARTIAL if parsed.partial else IMMUTABLE)


def mount(files: LogFiles | None = None) -> Mount:
    """``/log/...``; with no S3 endpoint configured every path is 404 (a deployment that does not serve the log)."""
    files = files or LogFiles()
    return Mount(
        "/log",
        routes=[
            Route("/checkpoint", files.checkpoint),
            Route("/key", files.key),
            Route("/tile/{rest:path}", files.tile),
        ],
    )
