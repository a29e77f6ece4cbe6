"""Tortoise ORM models: every table of the backend in one place.

`Blob` is one stored file (content-addressed by SHA-256); `Image` is one upload pointing at a
blob (identical uploads share the file); `Detection` is one circle found in an image. The blob
row is also the lock that keeps a file and the rows pointing at it consistent (see images.py).
An image whose file was found missing (reconciliation, backend/reconcile.py) is `failed` with
the reason in `error`; its file routes answer 410.
CHECK constraints that Tortoise cannot express live in the migration files.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ImageStatus(StrEnum):
    """Where an image stands with detection."""

    PENDING = "pending"  # stored; detection not done yet (model server unreachable): retry later
    DONE = "done"  # detections stored
    FAILED = "failed"  # the model server refused this image; the reason is in `error`


class Blob(Model):
    """One file in storage, named by the SHA-256 of its bytes."""

    sha256 = fields.CharField(max_length=64, primary_key=True)
    size_bytes = fields.BigIntField()
    content_type = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    images: fields.ReverseRelation[Image]

    class Meta:
        table = "blob"


class Image(Model):
    """One upload: file metadata, detection status and the model that produced its objects."""

    id = fields.UUIDField(primary_key=True)
    blob: fields.ForeignKeyRelation[Blob] = fields.ForeignKeyField(
        "models.Blob", related_name="images", on_delete=fields.RESTRICT
    )
    filename = fields.CharField(max_length=255, default="")
    content_type = fields.CharField(max_length=32)
    format = fields.CharField(max_length=8)
    width = fields.IntField()
    height = fields.IntField()
    size_bytes = fields.BigIntField()
    status = fields.CharEnumField(ImageStatus, max_length=16, default=ImageStatus.PENDING)
    error = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    model_name = fields.CharField(max_length=128, null=True)
    model_version = fields.CharField(max_length=64, null=True)
    score_threshold = fields.FloatField(null=True)
    max_detections = fields.IntField(null=True)
    num_detections = fields.IntField(default=0)
    inference_ms = fields.FloatField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    updated_at = fields.DatetimeField(auto_now=True)
    detected_at = fields.DatetimeField(null=True)
    #: Upload Idempotency-Key: a retry with it returns this image.
    idempotency_key = fields.CharField(max_length=200, null=True, unique=True)

    detections: fields.ReverseRelation[Detection]

    class Meta:
        table = "image"
        indexes = (("status", "created_at"), ("blob",))


class Detection(Model):
    """One circle found in an image, in the original image's pixels."""

    id = fields.BigIntField(primary_key=True)
    image: fields.ForeignKeyRelation[Image] = fields.ForeignKeyField(
        "models.Image", related_name="detections", on_delete=fields.CASCADE
    )
    rank = fields.IntField()  # 0 = highest score
    x1 = fields.FloatField()
    y1 = fields.FloatField()
    x2 = fields.FloatField()
    y2 = fields.FloatField()
    cx = fields.FloatField()
    cy = fields.FloatField()
    radius = fields.FloatField()
    score = fields.FloatField()

    class Meta:
        table = "detection"
        unique_together = (("image", "rank"),)
