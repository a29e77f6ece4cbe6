"""Judge uploaded bytes by their content: a real image of a supported format within the limits.

Reuses the model package's safe decoder (torch-free), which reads the header first so that a
decompression bomb is refused before any pixel is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from backend.errors import APIError
from bentos.circle_detector.model.imageio import ImageDecodeError, ImageTooLargeError, decode_image

CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}


@dataclass(frozen=True)
class ImageInfo:
    """What the content says the file is."""

    format: str
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Decode `data` fully (catching truncation) and describe it; raises APIError 413/415/422."""
    try:
        decode_image(data, max_pixels)
    except ImageTooLargeError as exc:
        raise APIError(413, f"image too large: {exc}") from exc
    except ImageDecodeError as exc:
        message = str(exc)
        unsupported = message.startswith(("unsupported image format", "bytes are not"))
        raise APIError(415 if unsupported else 422, f"not a usable image: {message}") from exc
    with Image.open(io.BytesIO(data)) as img:
        fmt = str(img.format)
        return ImageInfo(fmt, CONTENT_TYPES[fmt], img.width, img.height)
