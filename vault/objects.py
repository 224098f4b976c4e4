"""The vault's objects in S3 (minio client): ciphertext streamed in and out, never a whole document in memory.

Upload: minio's ``put_object`` runs in a worker thread with an unknown length (``length=-1``) and a 5 MiB
``part_size``, reading from a file-like :class:`_Pipe` that the event loop fills with ciphertext pieces
through a bounded queue. So memory per upload is one part (5 MiB, what S3 multipart needs at least) plus
the queue (``QUEUE_PIECES`` segments); an object that fits one part is a single PUT, a larger one a
multipart upload that minio aborts if the pipe fails. Parts are uploaded one at a time
(``num_parallel_uploads=1``) to keep that bound.

Download: ``get_object`` in a worker thread, its body read one segment at a time, one segment ahead of the
consumer.

Removal: ``delete`` (one object, best effort, for a failed upload) and ``remove`` (many, for the upkeep;
it raises so that the rows stay).

Object names are random UUIDs chosen by the caller: they reveal nothing about owner or content.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from core import logs
from core.aio import uninterrupted

log = logs.get("vault.objects")

BUCKET = "vault"
PART_SIZE = 5 * 1024 * 1024
QUEUE_PIECES = 4
UPLOAD_THREADS = 16  # uploads in flight at once; more wait for a thread (their senders feel backpressure)


class _Aborted(Exception):
    """The producer gave up: the object must not be completed."""


_EOF = object()
_ABORT = object()


class _Pipe:
    """A blocking file-like reader (for minio's thread) over pieces the event loop puts in a queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_PIECES)
        self._piece = memoryview(b"")
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._piece and not self._done:
            item = self.queue.get()
            if item is _ABORT:
                raise _Aborted("upload abandoned")
            if item is _EOF:
                self._done = True
            else:
                assert isinstance(item, bytes)
                self._piece = memoryview(item)
        if size < 0 or size >= len(self._piece):
            size = len(self._piece)
        out, self._piece = self._piece[:size], self._piece[size:]
        return out.obj if out.nbytes == len(out.obj) else bytes(out)  # type: ignore[return-value]  # whole: no copy


async def _settled(work: asyncio.Future[Any]) -> None:
    """Wait for a worker thread's future to end; its error follows from the caller's own (an abort, a
    consumer gone), so it is retrieved and dropped."""
    await asyncio.wait([work])
    if not work.cancelled():
        work.exception()


class ObjectStore:
    def __init__(self, client: Minio, bucket: str = BUCKET) -> None:
        self._client = client
        self._bucket = bucket
        self._uploads = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="vault-upload")

    async def put(self, name: str, pieces: AsyncIterator[bytes]) -> None:
        """Store the object ``name`` from ``pieces``; if ``pieces`` raises, S3 is told to abort and it re-raises."""
        pipe = _Pipe()
        loop = asyncio.get_running_loop()
        upload = loop.run_in_executor(self._uploads, self._put_blocking, name, pipe)
        try:
            async for piece in pieces:
                await self._send(pipe, piece, upload)
            await self._send(pipe, _EOF, upload)
        except BaseException:
            await uninterrupted(self._abandon(pipe, upload))  # the thread is done with S3 when this returns
            raise  # the caller deletes the object, should S3 have completed it after all
        try:
            await asyncio.shield(upload)  # S3 confirmed the object (or raises)
        except asyncio.CancelledError:
            await uninterrupted(_settled(upload))  # let S3 finish, so that the caller's delete comes last
            raise

    async def _abandon(self, pipe: _Pipe, upload: asyncio.Future[object]) -> None:
        await self._send(pipe, _ABORT, upload, give_up=True)
        await _settled(upload)

    @staticmethod
    async def _send(pipe: _Pipe, item: object, upload: asyncio.Future[object], give_up: bool = False) -> None:
        """Put ``item`` in the pipe, waiting for room without blocking the loop; stop if the upload ended."""
        while True:
            try:
                pipe.queue.put_nowait(item)
                return
            except queue.Full:
                if upload.done():
                    if give_up:
                        return
                    upload.result()  # raises the S3 error
                    raise RuntimeError("the upload ended before its data did") from None
                await asyncio.sleep(0.002)

    def _put_blocking(self, name: str, pipe: _Pipe) -> None:
        self._client.put_object(
            self._bucket,
            name,
            pipe,  # type: ignore[arg-type]
            length=-1,
            part_size=PART_SIZE,
            num_parallel_uploads=1,
            content_type="application/octet-stream",
        )

    async def chunks(self, name: str, size: int) -> AsyncIterator[bytes]:
        """The object's bytes in pieces of at most ``size``. One piece is read ahead while the consumer works
        on the previous one (decrypting, sending), so S3 and the consumer overlap: at most two pieces held."""
        response = await asyncio.to_thread(self._client.get_object, self._bucket, name)
        stream = response.stream(size)
        ahead: asyncio.Future[bytes | None] | None = None
        try:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, stream, None))
            while True:
                piece = await ahead
                if piece is None:
                    return
                ahead = asyncio.ensure_future(asyncio.to_thread(next, stream, None))
                yield piece
        finally:
            if ahead is not None:
                await _settled(ahead)  # the thread is done with the response before it is closed
            response.close()
            response.release_conn()

    async def delete(self, name: str) -> bool:
        """Remove the object, best effort: False if that failed (the upkeep sweeps it later), not an error."""
        try:
            await asyncio.to_thread(self._client.remove_object, self._bucket, name)
        except (S3Error, OSError) as error:
            log.warning("vault.object_delete_failed", error_type=type(error).__name__)
            return False
        return True

    async def remove(self, names: Sequence[str]) -> None:
        """Remove these objects (absent ones count as removed); raises if S3 refused any."""
        await asyncio.to_thread(self._remove_blocking, list(names))

    def _remove_blocking(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):  # S3 DeleteObjects takes at most 1000 keys
            batch = [DeleteObject(name) for name in names[start : start + 1000]]
            errors = list(self._client.remove_objects(self._bucket, batch))
            if errors:
                raise OSError(f"S3 refused to delete {len(errors)} objects: {errors[0].code}")

    def close(self) -> None:
        self._uploads.shutdown(wait=False, cancel_futures=True)
