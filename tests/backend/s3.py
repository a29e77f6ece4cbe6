"""A real S3 API server on 127.0.0.1 for tests (moto's standalone server), and a view of a bucket.

`python -m moto.server` runs in its own process group; each test gets a fresh bucket from
`MotoServer.new_bucket()`, whose environment points a backend (or S3Storage) at it.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

from tests.servers import free_port, stop_process_group

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    """`python -m moto.server` on a free port."""

    url: str
    process: subprocess.Popen[bytes]

    def client(self):
        return s3_client(self.url)

    def new_bucket(self, prefix: str = "images", endpoint: str | None = None) -> dict[str, str]:
        """A fresh bucket; the backend environment that stores in it (through `endpoint`)."""
        bucket = f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return {
            **CREDENTIALS,
            "STORAGE_URL": f"s3://{bucket}/{prefix}",
            "S3_ENDPOINT_URL": endpoint or self.url,
            "S3_TIMEOUT_S": "2",
        }


def s3_client(endpoint: str):
    """A plain boto3 S3 client (the tests' own view, independent of the backend's code)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def start_moto(log_dir: Path) -> MotoServer:
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MotoServer(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/moto-api/", timeout=2).status_code < 500:
                return server
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process, signal.SIGKILL, 5)
            raise RuntimeError(f"moto server did not start: {log_path}")
        time.sleep(0.1)


@dataclass
class BucketView:
    """What a bucket holds under a backend's prefix, classified like the local folders."""

    files: set[str]
    trash: list[str]
    derived: set[str]
    tmp: list[str]


def bucket_view(env: dict[str, str]) -> BucketView:
    """List the bucket of `env`'s STORAGE_URL page by page (boto3's paginator)."""
    bucket, _, prefix = env["STORAGE_URL"].removeprefix("s3://").partition("/")
    prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    view = BucketView(set(), [], set(), [])
    client = s3_client(env["S3_ENDPOINT_URL"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            parts = item["Key"][len(prefix) :].split("/")
            if parts[0] == "trash":
                view.trash.append(parts[1])
            elif parts[0] == "derived":
                view.derived.add(parts[1])
            elif parts[0] == "tmp":
                view.tmp.append(parts[1])
            else:
                view.files.add(parts[-1])
    return view


def object_name(env: dict[str, str], data: bytes) -> tuple[str, str]:
    """(bucket, object name) of `data` stored by a backend with `env`."""
    bucket, _, prefix = env["STORAGE_URL"].removeprefix("s3://").partition("/")
    key = hashlib.sha256(data).hexdigest()
    return bucket, f"{prefix.strip('/')}/{key[:2]}/{key[2:4]}/{key}"
