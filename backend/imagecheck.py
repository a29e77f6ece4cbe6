"""Judge uploaded bytes by their content: a real image of a supported format within the limits.

Two steps so that memory can be reserved in between (backend/budget.py): `read_header` reads
only the header (format, size; a decompression bomb is refused before any pixel is decoded)
and says how much memory decoding will take; `verify_image` then decodes every pixel to catch
truncation, JPEGs at 1/8 scale (PIL's draft mode still reads the whole stream, in 1/64 of the
memory). Every decoding failure, whatever PIL raises (crafted TIFFs raise TypeError or
OverflowError), is a 4xx, never a 500.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from backend.errors import APIError
from bentos.circle_detector.model.imageio import (
    SUPPORTED_FORMATS,
    ImageDecodeError,
    ImageTooLargeError,
    check_pixel_count,
)

CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}
#: Scale JPEGs are decoded at to check them (PIL draft: 1/2, 1/4 or 1/8).
CHECK_JPEG_SCALE = 8


@dataclass(frozen=True)
class ImageInfo:
    """What the content says the file is."""

    format: str
    content_type: str
    width: int
    height: int
    mode: str = "RGB"

    @property
    def check_bytes(self) -> int:
        """Memory `verify_image` takes to decode it (JPEGs are checked at 1/8 scale)."""
        scale = CHECK_JPEG_SCALE if self.format == "JPEG" else 1
        return pixel_bytes(-(-self.width // scale), -(-self.height // scale), self.mode)


def pixel_bytes(width: int, height: int, mode: str) -> int:
    """Bytes PIL takes for an image of that size and mode (RGB is stored as 4 bytes)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith(("I;16", "LA", "PA")) else 4
    return width * height * per_pixel


@contextmanager
def decoding(what: str = "not a usable image") -> Iterator[None]:
    """Map whatever decoding raises to the client's 413/415/422."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except APIError:
        raise
    except ImageTooLargeError as exc:
        raise APIError(413, f"image too large: {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise APIError(413, f"image too large: rejected as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise APIError(415, f"{what}: bytes are not a recognised image file") from exc
    except ImageDecodeError as exc:
        raise APIError(422, f"{what}: {exc}") from exc
    except MemoryError as exc:
        raise APIError(413, "image too large to decode") from exc
    except Exception as exc:  # PIL raises many types for crafted files
        raise APIError(422, f"{what}: image is truncated or corrupt: {exc}") from exc


def read_header(data: bytes, max_pixels: int) -> ImageInfo:
    """Format and size from the header alone; raises APIError 413/415/422."""
    if not data:
        raise APIError(422, "not a usable image: image is empty (0 bytes)")
    with decoding(), Image.open(io.BytesIO(data)) as img:
        if img.format not in SUPPORTED_FORMATS:
            raise APIError(
                415,
                f"not a usable image: unsupported image format {img.format!r}; "
                f"use one of {', '.join(sorted(SUPPORTED_FORMATS))}",
            )
        check_pixel_count(img.width, img.height, max_pixels)
        fmt = str(img.format)
        return ImageInfo(fmt, CONTENT_TYPES[fmt], img.width, img.height, img.mode)


def verify_image(data: bytes) -> None:
    """Decode every pixel (JPEGs at 1/8 scale) so that truncated or corrupt files are refused."""
    with decoding(), Image.open(io.BytesIO(data)) as img:
        if img.format == "JPEG":
            img.draft(img.mode, (img.width // CHECK_JPEG_SCALE, img.height // CHECK_JPEG_SCALE))
        img.load()


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """`read_header` then `verify_image`, for callers that reserve no memory in between."""
    info = read_header(data, max_pixels)
    verify_image(data)
    return info
