"""`/api/v1/images/...`: thin translations between HTTP and ImageService."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from backend.api.deps import Service, WriteAccess
from backend.errors import APIError
from backend.models import ImageStatus
from backend.schemas import ErrorOut, ImageOut, ImagePage, ImageSummary, ObjectOut
from backend.uploads import OVERHEAD_BYTES, read_upload

router = APIRouter(prefix="/images", tags=["images"])

ScoreThreshold = Annotated[
    float | None, Query(ge=0, le=1, description="Minimum score kept (default SCORE_THRESHOLD).")
]
MaxDetections = Annotated[
    int | None, Query(ge=1, le=10000, description="Most circles kept (default MAX_DETECTIONS).")
]
#: Uploaded bytes are served as the type judged at upload, never re-sniffed nor run as a page.
UNTRUSTED = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
OUTAGE = {
    "model": ErrorOut,
    "description": "Database or storage unavailable, or the server busy (memory budget); "
    "try again after `Retry-After` seconds.",
}
IMAGE_ERRORS = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: OUTAGE}
FILE_ERRORS = {
    **IMAGE_ERRORS,
    410: {"model": ErrorOut, "description": "The image's stored file is missing."},
}
WRITE_ERRORS = {401: {"model": ErrorOut}}
#: How much memory an upload may take per byte of its body: the body as received, the copy
#: handed on, and the model client's encoding of it.
UPLOAD_MEMORY_FACTOR = 3
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string of up to 200 visible ASCII characters. A retry with the "
        "same key and the same file returns the image the first attempt stored (200) instead "
        "of a second one; the same key with another file is a 422.",
    ),
]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PNG, JPEG, BMP, TIFF or WEBP, judged by content.",
                        }
                    },
                }
            }
        },
    }
}


def _image_response(image, objects, timings, status_code: int, request: Request) -> JSONResponse:
    body = ImageOut.build(image, objects, timings).model_dump(mode="json")
    headers = {"Location": str(request.url_for("get_image", image_id=str(image.id)).path)}
    return JSONResponse(body, status_code=status_code, headers=headers)


@router.post(
    "/",
    status_code=201,
    response_model=ImageOut,
    dependencies=[WriteAccess],
    openapi_extra=UPLOAD_BODY,
    responses={
        201: {"description": "Stored and detected."},
        202: {
            "model": ImageOut,
            "description": "Stored, but detection did not finish: `status` is `pending` (the "
            "model server stayed unreachable until MODEL_RETRY_DEADLINE_S; call POST "
            ".../detect later) or `failed` (the model server refused the image; `error` says "
            "why). The image id is in the body and the Location header.",
        },
        200: {
            "model": ImageOut,
            "description": "A retry with the same Idempotency-Key and file: the image the "
            "first attempt stored (header `Idempotent-Replayed: true`).",
        },
        413: {"model": ErrorOut, "description": "File or pixel count over the limit."},
        415: {"model": ErrorOut, "description": "Not an image, or an unsupported format."},
        422: {
            "model": ErrorOut,
            "description": "Empty, truncated or corrupt image; bad form; an Idempotency-Key "
            "already used for another file.",
        },
        503: OUTAGE,
        507: {"model": ErrorOut, "description": "Storage full; nothing was stored."},
        **WRITE_ERRORS,
    },
)
async def upload_image(
    request: Request,
    service: Service,
    score_threshold: ScoreThreshold = None,
    max_detections: MaxDetections = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Upload one image (multipart field `file`), store it and detect its circles."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise APIError(422, "Idempotency-Key must be 1 to 200 visible ASCII characters")
    limit = service.settings.max_upload_bytes
    async with service.body_budget.reserve(UPLOAD_MEMORY_FACTOR * _body_size(request, limit)):
        upload = await read_upload(request, limit)
        params = service.params(score_threshold, max_detections)
        image, timings, replayed = await service.create(upload, params, idempotency_key)
        del upload
    objects = await service.detections(image)
    if replayed:
        response = _image_response(image, objects, None, 200, request)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    status = 201 if image.status == ImageStatus.DONE else 202
    return _image_response(image, objects, timings, status, request)


def _body_size(request: Request, limit: int) -> int:
    """The body's declared size, or the most it may be (what the memory budget reserves)."""
    declared = request.headers.get("content-length", "")
    most = limit + OVERHEAD_BYTES
    digits = declared.isascii() and declared.isdigit() and len(declared) <= 20
    return min(int(declared), most) if digits else most


@router.get("/", response_model=ImagePage)
async def list_images(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Rows to skip (a 64-bit integer).")
    ] = 0,
    status: Annotated[ImageStatus | None, Query(description="Only images in this state.")] = None,
) -> ImagePage:
    """Images, newest first (optionally only `pending`, `done` or `failed` ones)."""
    items, total = await service.page(limit, offset, status)
    return ImagePage(
        items=[ImageSummary.of(i) for i in items], total=total, limit=limit, offset=offset
    )


@router.get("/{image_id}", response_model=ImageOut, responses=IMAGE_ERRORS)
async def get_image(image_id: UUID, service: Service) -> ImageOut:
    """One image with its objects."""
    image = await service.get(image_id)
    return ImageOut.build(image, await service.detections(image))


@router.get(
    "/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **FILE_ERRORS},
)
async def get_image_file(image_id: UUID, service: Service) -> Response:
    """The original bytes, with the content type judged at upload (streamed from storage)."""
    image = await service.get(image_id)
    opened = await service.open_file(image)
    return StreamingResponse(
        opened.chunks,
        media_type=image.content_type,
        headers={
            "Content-Length": str(opened.size),
            "Cache-Control": "private, max-age=31536000, immutable",
            **UNTRUSTED,
        },
    )


@router.get(
    "/{image_id}/annotated",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **FILE_ERRORS},
)
async def get_annotated(image_id: UUID, service: Service) -> Response:
    """PNG of the image with the detected circles drawn, at most ANNOTATED_MAX_SIDE pixels on
    its longest side (circles scaled with it); cached in storage."""
    image = await service.get(image_id)
    return Response(await service.annotated(image), media_type="image/png", headers=UNTRUSTED)


@router.get(
    "/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **FILE_ERRORS},
)
async def get_thumbnail(image_id: UUID, service: Service) -> Response:
    """A small JPEG of the image (at most THUMBNAIL_SIDE pixels), cached in storage."""
    image = await service.get(image_id)
    return Response(
        await service.thumbnail(image),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=86400", **UNTRUSTED},
    )


@router.delete(
    "/{image_id}",
    status_code=204,
    dependencies=[WriteAccess],
    responses={**IMAGE_ERRORS, **WRITE_ERRORS},
)
async def delete_image(image_id: UUID, service: Service) -> Response:
    """Delete the image, its objects and its file."""
    await service.delete(image_id)
    return Response(status_code=204)


@router.get("/{image_id}/objects", response_model=list[ObjectOut], responses=IMAGE_ERRORS)
async def list_objects(image_id: UUID, service: Service) -> list[ObjectOut]:
    """The image's detected circles, best first."""
    image = await service.get(image_id)
    return [ObjectOut.of(d) for d in await service.detections(image)]


@router.get("/{image_id}/objects/{object_id}", response_model=ObjectOut, responses=IMAGE_ERRORS)
async def get_object(
    image_id: UUID, object_id: Annotated[int, Path(ge=1, le=2**63 - 1)], service: Service
) -> ObjectOut:
    """One detected circle of the image."""
    return ObjectOut.of(await service.detection(await service.get(image_id), object_id))


@router.post(
    "/{image_id}/detect",
    response_model=ImageOut,
    dependencies=[WriteAccess],
    responses={
        200: {"description": "Detected; objects replaced by this run's."},
        **FILE_ERRORS,
        503: {
            "model": ErrorOut,
            "description": "The model server is still unreachable (the image stays `pending`), "
            "or the database or storage is unavailable; try again after `Retry-After`.",
        },
        422: {"model": ErrorOut, "description": "Bad id, or the model server refused the image."},
        **WRITE_ERRORS,
    },
)
async def detect_again(
    image_id: UUID,
    request: Request,
    service: Service,
    score_threshold: ScoreThreshold = None,
    max_detections: MaxDetections = None,
) -> JSONResponse:
    """Run detection again (after the model server was down, or for a new model version)."""
    image = await service.get(image_id)
    await service.detect(image, service.params(score_threshold, max_detections))
    if image.status == ImageStatus.PENDING:
        raise APIError(503, f"model server unavailable: {image.error}", image_id=str(image.id))
    if image.status == ImageStatus.FAILED:
        message = f"the model server refused the image: {image.error}"
        raise APIError(422, message, image_id=str(image.id))
    return _image_response(image, await service.detections(image), None, 200, request)
