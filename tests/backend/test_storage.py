"""LocalStorage: content-addressed names, atomic writes, two-step deletes, hostile keys refused."""

from __future__ import annotations

import hashlib

import pytest

from backend.storage import LocalStorage, StorageError, content_key


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


async def test_put_get_is_content_addressed_and_idempotent(storage):
    data = b"some image bytes"
    key = content_key(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert await storage.put(key, data) is True
    assert await storage.put(key, data) is False  # already there
    assert await storage.get(key) == data and await storage.exists(key)
    assert storage.path(key) == storage.root / key[:2] / key[2:4] / key
    assert storage.file_count() == 1
    assert not list((storage.root / ".tmp").iterdir())  # no temporary file left behind


async def test_put_refuses_a_key_that_is_not_the_datas_hash(storage):
    with pytest.raises(ValueError, match="SHA-256"):
        await storage.put("0" * 64, b"data")
    assert storage.file_count() == 0


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
def test_only_hex_sha256_keys_map_to_paths(storage, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.path(key)


async def test_discard_then_purge_or_restore(storage):
    data = b"to be deleted"
    key = content_key(data)
    await storage.put(key, data)
    token = await storage.discard(key)
    assert token and not await storage.exists(key)
    await storage.restore(token, key)
    assert await storage.get(key) == data
    token = await storage.discard(key)
    await storage.purge(token)
    assert not await storage.exists(key)
    assert not list((storage.root / ".trash").iterdir())
    assert await storage.discard(key) is None  # already gone
    with pytest.raises(FileNotFoundError):
        await storage.get(key)


async def test_trash_tokens_are_checked(storage):
    with pytest.raises(ValueError, match="invalid trash token"):
        await storage.purge("../../x")


async def test_write_failures_become_storage_errors(storage):
    data = b"blocked"
    key = content_key(data)
    storage.root.mkdir(parents=True)
    (storage.root / key[:2]).write_bytes(b"a file where a folder must be")
    with pytest.raises(StorageError, match="cannot write"):
        await storage.put(key, data)
    tmp = storage.root / ".tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


async def test_check_writable(storage, tmp_path):
    await storage.check_writable()
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(StorageError, match="not writable"):
        await LocalStorage(blocked).check_writable()


async def test_derived_files_are_cached_beside_and_dropped_with_the_file(storage):
    data = b"an image"
    key = content_key(data)
    await storage.put(key, data)
    assert await storage.get_derived(key, "thumb-256.jpg") is None
    await storage.put_derived(key, "thumb-256.jpg", b"small")
    assert await storage.get_derived(key, "thumb-256.jpg") == b"small"
    with pytest.raises(ValueError, match="derived file name"):
        await storage.put_derived(key, "../escape.png", b"x")
    await storage.purge(await storage.discard(key))
    assert await storage.get_derived(key, "thumb-256.jpg") is None
    assert storage.derived_keys() == []


async def test_open_streams_a_file_that_is_deleted_meanwhile(storage):
    data = b"streamed" * 1000
    key = content_key(data)
    await storage.put(key, data)
    fh = await storage.open(key)
    await storage.purge(await storage.discard(key))
    with fh:
        assert fh.read() == data
    with pytest.raises(FileNotFoundError):
        await storage.open(key)


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
