"""Audit of a backend's storage against its database, for crash and outage tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.backend.helpers import BackendServer, db_rows


@dataclass
class Audit:
    """What disagrees between storage and database (all empty when consistent)."""

    images: dict[str, str] = field(default_factory=dict)  # image id -> blob sha256
    rows_without_file: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    trash_files: list[str] = field(default_factory=list)
    blobs_without_images: list[str] = field(default_factory=list)

    @property
    def problems(self) -> dict[str, list[str]]:
        found = {
            "rows without file": self.rows_without_file,
            "orphan files": self.orphan_files,
            "temp files": self.temp_files,
            "trash files": self.trash_files,
            "blobs without images": self.blobs_without_images,
        }
        return {k: v for k, v in found.items() if v}


def audit(server: BackendServer) -> Audit:
    """Compare the storage folder (or bucket) with the blob and image tables (server idle)."""
    images = {str(i): b for i, b in db_rows(server, "SELECT id, blob_id FROM image")}
    blobs = {b for (b,) in db_rows(server, "SELECT sha256 FROM blob")}
    if server.env.get("STORAGE_URL"):
        from tests.backend.s3 import bucket_view

        view = bucket_view(server.env)
        return Audit(
            images=images,
            rows_without_file=sorted(b for b in blobs if b not in view.files),
            orphan_files=sorted(f for f in view.files if f not in blobs),
            temp_files=sorted(view.tmp),
            trash_files=sorted(view.trash),
            blobs_without_images=sorted(blobs - set(images.values())),
        )
    root = server.storage_dir
    files = {p.name for p in root.glob("??/??/*") if p.is_file()}
    tmp, trash = root / ".tmp", root / ".trash"
    return Audit(
        images=images,
        rows_without_file=sorted(b for b in blobs if b not in files),
        orphan_files=sorted(f for f in files if f not in blobs),
        temp_files=sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else [],
        trash_files=sorted(p.name for p in trash.iterdir()) if trash.is_dir() else [],
        blobs_without_images=sorted(blobs - set(images.values())),
    )
