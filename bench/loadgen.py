"""A lean HTTP/1.1 load generator on asyncio streams: keep-alive connections, pre-built requests.

httpx spends several hundred microseconds of client CPU a request; on a 2-core machine shared with the
server, that would measure the client. This sends bytes and reads ``Content-Length`` bodies, nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from bench.stats import Tally


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        return cls(reader, writer, parts.netloc)

    def request_bytes(self, method: str, path: str, form: dict[str, str] | None = None,
                      basic: tuple[str, str] | None = None, cookie: str = "") -> bytes:  # fmt: skip
        body = urlencode(form).encode() if form is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        if basic:
            lines.append("Authorization: Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode())
        if form is not None:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        status, _headers, body = await self.exchange(raw)
        return status, body

    async def exchange(self, raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request; return status, header lines (lower-cased names) and body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = []
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            headers.append((name, value))
            if name == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


Step = Callable[[Connection, int], Awaitable[bool]]


async def run(url: str, connections: int, seconds: float, step: Step) -> dict[str, object]:
    """Each connection loops ``step`` (which sends one request and says if it succeeded) for ``seconds``."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        conn = await Connection.open(url)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if await step(conn, index):
                    tally.latencies.append(time.perf_counter() - started)
                else:
                    tally.error("failed")
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return tally.summary(time.perf_counter() - started)
