"""The log's tiles and checkpoint in S3 (minio client): small whole objects, one PUT or GET each.

Writes come from the sequencer only (audit/sequencer.py); the edge reads with a read-only identity
(services/edge/log_routes.py). Every failure is a ``TileStoreError`` (S3 unreachable, refusing, timing out);
a missing object on read is ``None``.
"""

from __future__ import annotations

import asyncio
import io

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from audit.sequencer import TileStoreError

MISSING = ("NoSuchKey", "NoSuchObject")


class S3Tiles:
    def __init__(self, client: Minio, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(
                self._client.put_object, self.bucket, name, io.BytesIO(data), len(data), content_type=content_type
            )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            raise TileStoreError(f"S3 did not store {name} ({type(error).__name__})") from error

    async def get(self, name: str) -> bytes | None:
        return await asyncio.to_thread(self.get_blocking, name)

    def get_blocking(self, name: str) -> bytes | None:
        try:
            response = self._client.get_object(self.bucket, name)
        except S3Error as error:
            if error.code in MISSING:
                return None
            raise TileStoreError(f"S3 refused to read {name} ({error.code})") from error
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            raise TileStoreError(f"S3 did not answer for {name} ({type(error).__name__})") from error
        try:
            return bytes(response.read())
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TileStoreError(f"S3 broke off reading {name} ({type(error).__name__})") from error
        finally:
            response.close()
            response.release_conn()
