"""The Storage protocol on an S3 bucket (AWS S3, MinIO, any S3 API), through aiobotocore.

`STORAGE_URL=s3://bucket/prefix` selects it; the endpoint is S3_ENDPOINT_URL (or botocore's own
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3), region and credentials come from the usual AWS
environment variables (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a web identity
token, an instance profile: botocore's chain). Layout under the prefix:

    ab/cd/abcd...              the stored files (content-addressed, as on local disk)
    trash/<key>.<uuid>         files moved aside by a delete that has not committed yet
    derived/<key>/<name>       caches made from a file (thumbnails, annotated PNGs)
    tmp/probe-<uuid>           readiness probes

The local store's guarantees carry over:
- A PUT is atomic in S3 (an object appears whole or not at all), so no `.part` stage is needed;
  a put of a key that exists with the same size writes nothing.
- Deleting is two steps: `discard` copies the object to `trash/<token>` and then deletes it;
  `purge` deletes the trash copy, `restore` copies it back. A crash between the copy and the
  delete leaves both; reconciliation (backend/reconcile.py) keeps the file when its row is there
  and purges the trash copy, exactly as for a restored local file.
- Failures: a missing object is FileNotFoundError; a store that says it is full (MinIO's
  XMinioStorageFull, QuotaExceeded) is StorageFullError (507); any other failure, including a
  store that cannot be reached within S3_TIMEOUT_S, is StorageError (503 + Retry-After).
- Reads of GET .../file are streamed in CHUNK_BYTES pieces; nothing lists into memory beyond
  the keys (64 characters each) that reconciliation needs.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.config import Settings
from backend.storage import (
    _DERIVED,
    _KEY,
    _TOKEN,
    CHUNK_BYTES,
    Opened,
    StorageError,
    StorageFullError,
    content_key,
)

T = TypeVar("T")
_MISSING = {"NoSuchKey", "404", "NotFound"}
_FULL = {"XMinioStorageFull", "QuotaExceeded", "StorageFull"}
_BATCH = 1000  # most keys one DeleteObjects takes


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); ValueError otherwise."""
    if not url.startswith("s3://"):
        raise ValueError("STORAGE_URL must be empty (local directory) or s3://bucket[/prefix]")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError("STORAGE_URL s3:// needs a bucket name: s3://bucket[/prefix]")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3Storage:
    """Content-addressed files in `bucket` under `prefix`; use as an async context manager."""

    #: Objects per ListObjectsV2 page (S3's maximum; tests lower it to cross pages).
    page_size = 1000

    def __init__(self, settings: Settings) -> None:
        self.bucket, self.prefix = parse_storage_url(settings.storage_url)
        self.settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> S3Storage:
        s = self.settings
        endpoint = (
            s.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        config = Config(
            connect_timeout=s.s3_timeout_s,
            read_timeout=s.s3_timeout_s,
            retries={"max_attempts": s.s3_max_attempts, "mode": "standard"},
            # path style works with MinIO and other S3-compatible stores on a custom endpoint
            s3={"addressing_style": "path" if endpoint else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client("s3", endpoint_url=endpoint or None, config=config)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    # -- names -----------------------------------------------------------------------------

    def object_name(self, key: str) -> str:
        """Where `key` lives; only a hex SHA-256 is accepted, so no client text reaches a name."""
        if not _KEY.match(key):
            raise ValueError(f"invalid storage key {key!r}")
        return f"{self.prefix}{key[:2]}/{key[2:4]}/{key}"

    def _trash_name(self, token: str) -> str:
        if not _TOKEN.match(token):
            raise ValueError(f"invalid trash token {token!r}")
        return f"{self.prefix}trash/{token}"

    def _derived_name(self, key: str, name: str) -> str:
        if not _DERIVED.match(name):
            raise ValueError(f"invalid derived file name {name!r}")
        self.object_name(key)
        return f"{self.prefix}derived/{key}/{name}"

    # -- one call, its errors translated ---------------------------------------------------

    async def _call(self, doing: str, call: Awaitable[T]) -> T:
        """Await one S3 call; missing -> FileNotFoundError, full -> 507, anything else -> 503."""
        try:
            return await call
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _MISSING:
                raise FileNotFoundError(doing) from exc
            cls = StorageFullError if code in _FULL else StorageError
            raise cls(f"cannot {doing}: {code} {error.get('Message', '')}".strip()) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise StorageError(f"cannot {doing}: {exc or type(exc).__name__}") from exc

    async def _head(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(
                "read object metadata", self._client.head_object(Bucket=self.bucket, Key=name)
            )
        except FileNotFoundError:
            return None

    async def _delete(self, name: str, doing: str) -> None:
        await self._call(doing, self._client.delete_object(Bucket=self.bucket, Key=name))

    async def _copy(self, source: str, target: str, doing: str) -> None:
        await self._call(
            doing,
            self._client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
            ),
        )

    async def _read(self, name: str, doing: str) -> bytes:
        response = await self._call(doing, self._client.get_object(Bucket=self.bucket, Key=name))
        async with response["Body"] as body:
            return await self._call(doing, body.read())

    async def _write(self, name: str, data: bytes, doing: str) -> None:
        await self._call(doing, self._client.put_object(Bucket=self.bucket, Key=name, Body=data))

    async def _list(self, prefix: str) -> AsyncIterator[str]:
        """Every object name under `prefix`, page by page (ListObjectsV2)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        try:
            async for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]
        except ClientError as exc:
            raise StorageError(f"cannot list the bucket: {exc}") from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise StorageError(f"cannot list the bucket: {exc or type(exc).__name__}") from exc

    async def _delete_many(self, names: list[str], doing: str) -> None:
        for i in range(0, len(names), _BATCH):
            batch = [{"Key": n} for n in names[i : i + _BATCH]]
            await self._call(
                doing,
                self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )

    # -- the Storage protocol --------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> bool:
        if content_key(data) != key:
            raise ValueError("storage key does not match the data's SHA-256")
        name = self.object_name(key)
        head = await self._head(name)
        if head is not None and head.get("ContentLength") == len(data):
            return False
        await self._write(name, data, "write file to storage")
        return True

    async def get(self, key: str) -> bytes:
        return await self._read(self.object_name(key), "read file from storage")

    async def open(self, key: str) -> Opened:
        response = await self._call(
            "open file in storage",
            self._client.get_object(Bucket=self.bucket, Key=self.object_name(key)),
        )
        return Opened(int(response["ContentLength"]), self._chunks(response["Body"]))

    async def _chunks(self, body: Any) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._call("stream file from storage", body.read(CHUNK_BYTES)):
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        return await self._head(self.object_name(key)) is not None

    async def discard(self, key: str) -> str | None:
        token = f"{key}.{uuid.uuid4().hex}"
        try:
            await self._copy(self.object_name(key), self._trash_name(token), "move file aside")
        except FileNotFoundError:
            return None
        await self._delete(self.object_name(key), "remove file from storage")
        return token

    async def restore(self, token: str, key: str) -> None:
        try:
            await self._copy(self._trash_name(token), self.object_name(key), "restore file")
        except FileNotFoundError as exc:
            raise StorageError(f"cannot restore file: trash copy {token} is gone") from exc
        await self._delete(self._trash_name(token), "restore file")

    async def purge(self, token: str) -> None:
        await self._delete(self._trash_name(token), "purge file from storage")
        key = token.split(".", 1)[0]
        if not await self.exists(key):  # a new upload of the same bytes keeps its cache
            await self.drop_derived(key)

    async def get_derived(self, key: str, name: str) -> bytes | None:
        try:
            return await self._read(self._derived_name(key, name), "read cached file")
        except FileNotFoundError:
            return None

    async def put_derived(self, key: str, name: str, data: bytes) -> None:
        await self._write(self._derived_name(key, name), data, "cache file")

    async def check_writable(self) -> None:
        name = f"{self.prefix}tmp/probe-{uuid.uuid4().hex}"
        try:
            await self._write(name, b"ok", f"write to s3://{self.bucket}/{self.prefix}")
        finally:
            with contextlib.suppress(StorageError, FileNotFoundError):
                await self._delete(name, "remove probe")

    # -- reconciliation --------------------------------------------------------------------

    async def sweep_temp(self) -> int:
        names = [n async for n in self._list(f"{self.prefix}tmp/")]
        await self._delete_many(names, "remove probes")
        return len(names)

    async def list_keys(self) -> list[str]:
        keys = []
        async for name in self._list(self.prefix):
            parts = name[len(self.prefix) :].split("/")
            if len(parts) == 3 and _KEY.match(parts[2]) and parts[2][:4] == parts[0] + parts[1]:
                keys.append(parts[2])
        return keys

    async def list_trash(self) -> list[tuple[str, str]]:
        found = []
        async for name in self._list(f"{self.prefix}trash/"):
            token = name.rsplit("/", 1)[1]
            match = _TOKEN.match(token)
            if match:
                found.append((token, match.group(1)))
            else:
                await self._delete(name, "remove stray trash object")
        return found

    async def list_derived(self) -> list[str]:
        keys: set[str] = set()
        async for name in self._list(f"{self.prefix}derived/"):
            key = name[len(self.prefix) + len("derived/") :].split("/", 1)[0]
            if _KEY.match(key):
                keys.add(key)
        return sorted(keys)

    async def remove(self, key: str) -> None:
        await self._delete(self.object_name(key), "remove orphan file")
        await self.drop_derived(key)

    async def drop_derived(self, key: str) -> None:
        self.object_name(key)  # validates the key
        names = [n async for n in self._list(f"{self.prefix}derived/{key}/")]
        await self._delete_many(names, "drop cached files")
