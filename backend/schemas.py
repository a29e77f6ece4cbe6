"""The API's JSON shapes (pydantic), kept apart from the ORM models they are built from."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from backend.models import Detection, Image, ImageStatus

API_PREFIX = "/api/v1"


class ErrorOut(BaseModel):
    """Every error body."""

    error: str = Field(description="What went wrong, in words.")
    image_id: UUID | None = Field(None, description="The stored image, where one was kept.")


class BBox(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class Point(BaseModel):
    x: float
    y: float


class ObjectOut(BaseModel):
    """One detected circle."""

    id: int
    image_id: UUID
    rank: int = Field(description="0 is the highest score.")
    bbox: BBox
    center: Point
    radius: float
    score: float

    @classmethod
    def of(cls, det: Detection) -> ObjectOut:
        return cls(
            id=det.id,
            image_id=det.image_id,  # type: ignore[attr-defined]
            rank=det.rank,
            bbox=BBox(x1=det.x1, y1=det.y1, x2=det.x2, y2=det.y2),
            center=Point(x=det.cx, y=det.cy),
            radius=det.radius,
            score=det.score,
        )


class Timings(BaseModel):
    """Milliseconds spent; fields not measured in this request are null."""

    validate_ms: float | None = None
    store_ms: float | None = None
    inference_ms: float | None = Field(None, description="The model server call that succeeded.")
    total_ms: float | None = None


class Links(BaseModel):
    self: str
    file: str
    annotated: str
    thumbnail: str
    objects: str
    detect: str


class ImageSummary(BaseModel):
    """An image without its objects (list pages)."""

    id: UUID
    filename: str
    content_type: str
    format: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    status: ImageStatus = Field(
        description="`done`: objects stored; `pending`: stored, detection still to do (model "
        "server unreachable; POST .../detect); `failed`: the model server refused the image."
    )
    error: str | None = Field(None, description="Why detection is pending or failed.")
    attempts: int = Field(description="Calls made to the model server so far.")
    model_name: str | None
    model_version: str | None
    score_threshold: float | None
    max_detections: int | None
    num_detections: int
    created_at: datetime
    updated_at: datetime
    detected_at: datetime | None
    links: Links

    @classmethod
    def fields_of(cls, image: Image) -> dict:
        base = f"{API_PREFIX}/images/{image.id}"
        return {
            "id": image.id,
            "filename": image.filename,
            "content_type": image.content_type,
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "size_bytes": image.size_bytes,
            "sha256": image.blob_id,  # type: ignore[attr-defined]
            "status": image.status,
            "error": image.error,
            "attempts": image.attempts,
            "model_name": image.model_name,
            "model_version": image.model_version,
            "score_threshold": image.score_threshold,
            "max_detections": image.max_detections,
            "num_detections": image.num_detections,
            "created_at": image.created_at,
            "updated_at": image.updated_at,
            "detected_at": image.detected_at,
            "links": Links(
                self=base,
                file=f"{base}/file",
                annotated=f"{base}/annotated",
                thumbnail=f"{base}/thumbnail",
                objects=f"{base}/objects",
                detect=f"{base}/detect",
            ),
        }

    @classmethod
    def of(cls, image: Image) -> ImageSummary:
        return cls(**cls.fields_of(image))


class ImageOut(ImageSummary):
    """An image with its detected objects and timings."""

    objects: list[ObjectOut]
    timings: Timings

    @classmethod
    def build(
        cls, image: Image, detections: list[Detection], timings: Timings | None = None
    ) -> ImageOut:
        timings = timings or Timings(inference_ms=image.inference_ms)
        return cls(
            **ImageSummary.fields_of(image),
            objects=[ObjectOut.of(d) for d in detections],
            timings=timings,
        )


class ImagePage(BaseModel):
    """One page of images, newest first."""

    items: list[ImageSummary]
    total: int
    limit: int
    offset: int


class CheckOut(BaseModel):
    ok: bool | None = Field(description="The check's outcome; null when it was not run.")
    required: bool = Field(True, description="Whether a failure makes the service not ready.")
    error: str | None = None


class ReadyOut(BaseModel):
    status: str = Field(description="`ready` or `not ready`.")
    checks: dict[str, CheckOut]
