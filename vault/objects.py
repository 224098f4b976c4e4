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

Deadline: every S3 request made for an RPC gets at most the caller's remaining time (core.deadline): each
attempt's connect and read timeouts are ``min(configured, deadline.remaining())`` (:class:`_CallerBoundPool`; urllib3
retries by opening again, so a retry gets only what is left), and once the deadline has passed no request starts.
The deadline travels into minio's worker threads in their context (``asyncio.to_thread`` copies it; the upload
executor runs each upload in ``contextvars.copy_context()``). A request cut so is logged
``vault.s3_deadline_exceeded`` (method, whether an attempt started, the read timeout it got) and raised as
:class:`S3DeadlineExceeded`, a ``TimeoutError``: the interceptor answers ``DEADLINE_EXCEEDED`` (the caller has
usually gone already), and it is not logged as S3 unreachable. ``DELETE`` requests are cleanup (a failed upload's
object, minio aborting a multipart upload) and must run to the end: they keep the configured timeouts. Within a
request, a body read is bounded per read (the socket timeout), not in total.

Failures: a missing object is :class:`ObjectMissing` (its row has no content: the caller says ``DATA_LOSS``);
S3 unreachable or failing (connection refused, retries exhausted, a 5xx, a timeout with time left) is
:class:`ObjectStoreUnavailable` (``UNAVAILABLE``), after at most two quick retries (:func:`s3_client`), never an
unmapped urllib3 error.

Object names are random UUIDs chosen by the caller: they reveal nothing about owner or content.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from core import deadline, logs
from core.aio import uninterrupted
from core.errors import Unavailable

log = logs.get("vault.objects")

BUCKET = "vault"
PART_SIZE = 5 * 1024 * 1024
QUEUE_PIECES = 4
UPLOAD_THREADS = 16  # uploads in flight at once; more wait for a thread (their senders feel backpressure)


MISSING = ("NoSuchKey", "NoSuchObject")
UNREACHABLE = "the object store (S3) cannot be reached now: nothing was stored, try again later"


class ObjectMissing(Exception):
    """S3 has no object of this name."""


class ObjectStoreUnavailable(Unavailable):
    """S3 cannot be reached or fails (``UNAVAILABLE``): the request may succeed later."""


class S3DeadlineExceeded(TimeoutError):
    """An S3 request cut short, or not started, because the caller's deadline passed (``DEADLINE_EXCEEDED``)."""


class _DeadlinePassed(urllib3.exceptions.HTTPError):
    """Raised instead of starting an attempt once the caller's deadline has passed."""


_attempt = threading.local()  # per worker thread: the read timeout the current request's last attempt got


def _within(limit: float | None, left: float) -> float:
    return left if limit is None else min(limit, left)


class _CallerBoundPool(urllib3.HTTPConnectionPool):
    """Each attempt of a request (urllib3 retries by calling ``urlopen`` again) gets at most the caller's
    remaining time, read from the context of the thread that makes it; none starts after the deadline."""

    def urlopen(self, method: str, url: str, *args: Any, **kw: Any) -> Any:  # type: ignore[override]
        left = deadline.remaining(math.inf)
        if left == math.inf or method == "DELETE":  # no caller deadline, or cleanup: the configured timeouts
            return super().urlopen(method, url, *args, **kw)
        if deadline.expired():
            raise _DeadlinePassed("the caller's deadline passed before the S3 request started")
        given = self._get_timeout(kw.pop("timeout", urllib3.util.timeout._DEFAULT_TIMEOUT))
        bound = urllib3.Timeout(connect=_within(given.connect_timeout, left), read=_within(given.read_timeout, left))
        _attempt.read = bound.read_timeout
        return super().urlopen(method, url, *args, timeout=bound, **kw)


class _CallerBoundHTTPSPool(_CallerBoundPool, urllib3.HTTPSConnectionPool):
    pass


def _cut_by_deadline(error: BaseException) -> bool:
    """The request failed because the caller's deadline passed: refused to start, or timed out (not a refused
    connection, which urllib3 counts as a connect timeout) with the deadline gone."""
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, _DeadlinePassed):
        return True
    timed_out = isinstance(error, urllib3.exceptions.TimeoutError) and not isinstance(
        error, urllib3.exceptions.NewConnectionError
    )
    return timed_out and deadline.expired()


class _DeadlinePoolManager(urllib3.PoolManager):
    """urllib3's pool manager with :class:`_CallerBoundPool` pools: S3 requests end at the caller's deadline."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.pool_classes_by_scheme = {"http": _CallerBoundPool, "https": _CallerBoundHTTPSPool}

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:  # type: ignore[override]
        _attempt.read = None
        try:
            return super().urlopen(method, url, redirect, **kw)
        except urllib3.exceptions.HTTPError as error:
            if method == "DELETE" or not _cut_by_deadline(error):
                raise
            read = _attempt.read
            log.info("vault.s3_deadline_exceeded", method=method, started=read is not None,
                     read_timeout_ms=None if read is None else round(read * 1000))  # fmt: skip
            raise S3DeadlineExceeded("the caller's deadline passed during an S3 request") from error


def s3_client(endpoint: str, access_key: str, secret_key: str, secure: bool, probe: bool = False) -> Minio:
    """A minio client that gives up on an unreachable S3 within about a second (two retries, 0.2 s back-off;
    minio's own default retries five times for ~12 s); ``probe``: no retry and 2 s timeouts (health checks).
    Its requests end at the caller's deadline (see the module's docstring)."""
    http = _DeadlinePoolManager(
        timeout=urllib3.Timeout(connect=2, read=2) if probe else urllib3.Timeout(connect=5, read=120),
        maxsize=UPLOAD_THREADS,
        cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
        ca_certs=certifi.where() if secure else None,
        retries=False if probe else urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, http_client=http)


def _failure(error: BaseException) -> BaseException:
    """What an S3 failure means to the vault (see the module's docstring); other errors unchanged."""
    if isinstance(error, S3Error) and error.code in MISSING:
        return ObjectMissing(error.code)
    if isinstance(error, S3DeadlineExceeded):  # a TimeoutError (an OSError): the caller's deadline, not S3
        return error
    if isinstance(error, (MinioException, urllib3.exceptions.HTTPError, OSError)):
        log.warning("vault.s3_unavailable", error_type=type(error).__name__)
        return ObjectStoreUnavailable(UNREACHABLE)
    return error


async def reachable(client: Minio, bucket: str = BUCKET) -> None:
    """Raises unless S3 answers now (the health check, with a ``probe`` client of :func:`s3_client`)."""
    try:
        await asyncio.to_thread(client.bucket_exists, bucket)
    except Exception as error:
        raise _failure(error) from error


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
        try:
            await self._put(name, pieces)
        except Exception as error:
            failure = _failure(error)
            if failure is error:
                raise
            raise failure from error

    async def _put(self, name: str, pieces: AsyncIterator[bytes]) -> None:
        pipe = _Pipe()
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # run_in_executor does not pass the caller's deadline on by itself
        upload = loop.run_in_executor(self._uploads, context.run, self._put_blocking, name, pipe)
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
        on the previous one (decrypting, sending), so S3 and the consumer overlap: at most two pieces held.
        :class:`ObjectMissing` if there is no such object."""
        try:
            response = await asyncio.to_thread(self._client.get_object, self._bucket, name)
        except Exception as error:
            raise _failure(error) from error
        stream = response.stream(size)
        ahead: asyncio.Future[bytes | None] | None = None
        try:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, stream, None))
            while True:
                try:
                    piece = await ahead
                except Exception as error:
                    raise _failure(error) from error
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
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("vault.object_delete_failed", error_type=type(error).__name__)
            return False
        return True

    async def remove(self, names: Sequence[str]) -> None:
        """Remove these objects (absent ones count as removed); raises if S3 refused any."""
        await asyncio.to_thread(self._remove_blocking, list(names))

    async def names(self) -> set[str]:
        """Every object name in the bucket (the upkeep's check that each document has its object)."""
        return await asyncio.to_thread(
            lambda: {o.object_name for o in self._client.list_objects(self._bucket, recursive=True) if o.object_name}
        )

    def _remove_blocking(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):  # S3 DeleteObjects takes at most 1000 keys
            batch = [DeleteObject(name) for name in names[start : start + 1000]]
            errors = list(self._client.remove_objects(self._bucket, batch))
            if errors:
                raise OSError(f"S3 refused to delete {len(errors)} objects: {errors[0].code}")

    def close(self) -> None:
        self._uploads.shutdown(wait=False, cancel_futures=True)
