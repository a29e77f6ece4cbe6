"""The Storage contract on LocalStorage and on S3Storage (a real moto S3 server): content-addressed
names, idempotent writes, two-step deletes, derived caches, listings for reconciliation, hostile
keys refused. Tests taking `store` run on both; those taking `storage` check the local layout."""

from __future__ import annotations

import hashlib

import pytest

from backend.config import Settings
from backend.s3storage import S3Storage
from backend.storage import LocalStorage, StorageError, content_key


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


@pytest.fixture(params=["local", "s3"])
async def store(request, tmp_path):
    """Each implementation of the Storage protocol."""
    if request.param == "local":
        yield LocalStorage(tmp_path / "store")
        return
    moto = request.getfixturevalue("moto_server")
    env = moto.new_bucket()
    settings = Settings(
        storage_url=env["STORAGE_URL"], s3_endpoint_url=env["S3_ENDPOINT_URL"], data_dir=tmp_path
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        request.getfixturevalue("monkeypatch").setenv(name, env[name])
    async with S3Storage(settings) as s3:
        yield s3


async def test_put_get_is_content_addressed_and_idempotent(store):
    data = b"some image bytes"
    key = content_key(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert await store.put(key, data) is True
    assert await store.put(key, data) is False  # already there
    assert await store.get(key) == data and await store.exists(key)
    assert await store.list_keys() == [key]
    assert await store.sweep_temp() == 0  # no temporary file left behind


def test_local_layout(storage):
    key = content_key(b"x")
    assert storage.path(key) == storage.root / key[:2] / key[2:4] / key


async def test_put_refuses_a_key_that_is_not_the_datas_hash(store):
    with pytest.raises(ValueError, match="SHA-256"):
        await store.put("0" * 64, b"data")
    assert await store.list_keys() == []


async def test_put_repairs_a_missing_or_short_file(storage):
    data = b"x" * 1000
    key = content_key(data)
    await storage.put(key, data)
    storage.path(key).write_bytes(b"half")
    assert await storage.put(key, data) is True
    assert await storage.get(key) == data


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "", "A" * 64, "g" * 64, "0" * 63, "0" * 64 + "/x", "0" * 65]
)
async def test_only_hex_sha256_keys_are_accepted(store, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await store.remove(key)


async def test_discard_then_purge_or_restore(store):
    data = b"to be deleted"
    key = content_key(data)
    await store.put(key, data)
    token = await store.discard(key)
    assert token and not await store.exists(key)
    assert await store.list_trash() == [(token, key)]
    await store.restore(token, key)
    assert await store.get(key) == data
    token = await store.discard(key)
    await store.purge(token)
    assert not await store.exists(key)
    assert await store.list_trash() == []
    assert await store.discard(key) is None  # already gone
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    with pytest.raises(FileNotFoundError):
        await store.open(key)


async def test_trash_tokens_are_checked(store):
    with pytest.raises(ValueError, match="invalid trash token"):
        await store.purge("../../x")


async def test_write_failures_become_storage_errors(storage):
    data = b"blocked"
    key = content_key(data)
    storage.root.mkdir(parents=True)
    (storage.root / key[:2]).write_bytes(b"a file where a folder must be")
    with pytest.raises(StorageError, match="cannot write"):
        await storage.put(key, data)
    tmp = storage.root / ".tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


async def test_check_writable(store, storage, tmp_path):
    await store.check_writable()
    assert await store.sweep_temp() == 0  # the probe is gone
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(StorageError, match="not writable"):
        await LocalStorage(blocked).check_writable()


async def test_derived_files_are_cached_beside_and_dropped_with_the_file(store):
    data = b"an image"
    key = content_key(data)
    await store.put(key, data)
    assert await store.get_derived(key, "thumb-256.jpg") is None
    await store.put_derived(key, "thumb-256.jpg", b"small")
    assert await store.get_derived(key, "thumb-256.jpg") == b"small"
    assert await store.list_derived() == [key]
    assert await store.list_keys() == [key]  # caches are not stored files
    with pytest.raises(ValueError, match="derived file name"):
        await store.put_derived(key, "../escape.png", b"x")
    await store.purge(await store.discard(key))
    assert await store.get_derived(key, "thumb-256.jpg") is None
    assert await store.list_derived() == []


async def test_remove_and_drop_derived_for_reconciliation(store):
    data = b"orphan"
    key = content_key(data)
    await store.put(key, data)
    await store.put_derived(key, "thumb-256.jpg", b"small")
    await store.remove(key)
    assert await store.list_keys() == [] and await store.list_derived() == []


async def test_open_streams_a_file_that_is_deleted_meanwhile(store):
    data = b"streamed" * 100_000  # several chunks
    key = content_key(data)
    await store.put(key, data)
    opened = await store.open(key)
    assert opened.size == len(data)
    await store.purge(await store.discard(key))
    assert b"".join([chunk async for chunk in opened.chunks]) == data
    with pytest.raises(FileNotFoundError):
        await store.open(key)


def test_a_full_disk_is_its_own_error():
    import errno

    from backend.storage import StorageFullError, storage_error

    assert isinstance(storage_error(OSError(errno.ENOSPC, "No space"), "x"), StorageFullError)
    other = storage_error(OSError(errno.EIO, "I/O error"), "read")
    assert type(other) is StorageError and "cannot read: I/O error" in str(other)


async def test_listings_for_reconciliation(storage):
    data = b"kept"
    key = content_key(data)
    await storage.put(key, data)
    token = await storage.discard(key)
    storage.trash_dir.joinpath("not-a-token").write_bytes(b"?")
    assert storage.trash_tokens() == [(token, key)]  # the stray name is removed
    assert not storage.trash_dir.joinpath("not-a-token").exists()
    await storage.restore(token, key)
    assert list(storage.stored_keys()) == [key]
    stray = storage.path(key).parent / "stray.txt"
    stray.write_bytes(b"?")
    assert list(storage.stray_files()) == [stray]


async def test_an_unreachable_s3_store_is_a_storage_error(tmp_path, monkeypatch):
    from tests.backend.s3 import CREDENTIALS
    from tests.servers import free_port

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        storage_url="s3://bucket/p",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_timeout_s=1,
        s3_max_attempts=1,
        data_dir=tmp_path,
    )
    data = b"x"
    async with S3Storage(settings) as s3:
        for call in (s3.check_writable(), s3.put(content_key(data), data), s3.list_keys()):
            with pytest.raises(StorageError, match="cannot"):
                await call


async def test_a_missing_bucket_is_a_storage_error(moto_server, tmp_path, monkeypatch):
    from tests.backend.s3 import CREDENTIALS

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        storage_url="s3://no-such-bucket", s3_endpoint_url=moto_server.url, data_dir=tmp_path
    )
    async with S3Storage(settings) as s3:
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await s3.check_writable()


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "file:///tmp", "bucket"])
def test_storage_url_must_name_a_bucket(url):
    with pytest.raises(ValueError, match="STORAGE_URL"):
        Settings(storage_url=url)


async def test_listings_cross_pages(store):
    """Reconciliation's listings read every page (S3: ListObjectsV2 continuation tokens)."""
    if isinstance(store, S3Storage):
        store.page_size = 2
    datas = [f"paged {i}".encode() for i in range(5)]
    for data in datas:
        await store.put(content_key(data), data)
        await store.put_derived(content_key(data), "thumb-256.jpg", b"t")
    tokens = [await store.discard(content_key(d)) for d in datas[:3]]
    assert sorted(await store.list_keys()) == sorted(content_key(d) for d in datas[3:])
    assert sorted(t for t, _ in await store.list_trash()) == sorted(tokens)
    assert sorted(await store.list_derived()) == sorted(content_key(d) for d in datas)
    await store.drop_derived(content_key(datas[0]))
    assert len(await store.list_derived()) == 4
