"""Decoding untrusted image bytes and normalising every pixel layout to one grey float image.

Everything that reaches the network passes through `to_gray_float`, so the model sees the same
thing whether a caller sent a 16-bit PNG, an RGBA screenshot or a raw UINT8 array.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

#: Default cap on decoded pixels (width x height); about 4096 x 4096.
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Smallest side we accept; smaller images carry no circle worth finding.
MIN_SIDE = 8
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "BMP", "TIFF", "WEBP"})


class ImageDecodeError(ValueError):
    """The bytes are not an image we can read (empty, truncated, unsupported, corrupt)."""


class ImageTooLargeError(ImageDecodeError):
    """The image has more pixels than allowed (decompression bombs included)."""


def check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Raise `ImageTooLargeError` when width x height exceeds the limit, before decoding."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageDecodeError(f"image is {width}x{height}; each side must be at least {MIN_SIDE}")


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an array (H, W), (H, W, 3) or (H, W, 4); uint8 or uint16.

    The header is read first so that a decompression bomb is refused before any pixel is decoded.
    """
    if not data:
        raise ImageDecodeError("image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in SUPPORTED_FORMATS:
                    raise ImageDecodeError(
                        f"unsupported image format {img.format!r}; "
                        f"use one of {', '.join(sorted(SUPPORTED_FORMATS))}"
                    )
                check_pixel_count(img.width, img.height, max_pixels)
                img.load()
                return pil_to_array(img)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image rejected as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("bytes are not a recognised image file") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"image is truncated or corrupt: {exc}") from exc
    except MemoryError as exc:
        raise ImageTooLargeError("image needs more memory to decode than is available") from exc
    except Exception as exc:  # crafted files make PIL raise anything
        # TypeError, OverflowError, IndexError, KeyError, ZeroDivisionError... seen from
        # crafted TIFF tags; the bytes are the client's fault whatever PIL raises.
        raise ImageDecodeError(f"image is corrupt ({type(exc).__name__} while decoding)") from exc


def pil_to_array(img: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image to uint8/uint16 numpy, keeping 16-bit depth where present."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.uint16)
    if mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        return np.clip(arr, 0, 65535).astype(np.uint16)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return np.clip(arr, 0, 65535).astype(np.uint16)
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(img, dtype=np.uint8)
    if mode in ("1", "P", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        target = "RGBA" if ("A" in mode or "transparency" in img.info) else "RGB"
        return np.asarray(img.convert(target), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """Any supported array to float32 grey in [0, 1], shape (H, W).

    Accepts (H, W), (H, W, 1), (H, W, 3) RGB and (H, W, 4) RGBA (composited over white, as a
    viewer would show it), in uint8, uint16, bool or float in [0, 1].
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageDecodeError(
            f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {arr.shape}"
        )
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ImageDecodeError(
            f"image is {arr.shape[1]}x{arr.shape[0]}; each side must be at least {MIN_SIDE}"
        )
    if arr.dtype not in (np.uint8, np.uint16, np.bool_) and not np.issubdtype(
        arr.dtype, np.floating
    ):
        raise ImageDecodeError(f"unsupported pixel type {arr.dtype}; use uint8, uint16 or float")
    if arr.ndim == 2:
        return np.ascontiguousarray(_scaled(arr))
    # Colour images in bands of rows: a float copy of a whole 4096 x 4096 RGB image is 200 MB
    # on top of its grey result; per band the same arithmetic needs a few MB.
    grey = np.empty(arr.shape[:2], dtype=np.float32)
    for top in range(0, arr.shape[0], _BAND_ROWS):
        grey[top : top + _BAND_ROWS] = _grey(_scaled(arr[top : top + _BAND_ROWS]))
    return grey


#: Rows converted at a time by `to_gray_float` (bounds its temporary memory).
_BAND_ROWS = 256
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _scaled(arr: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)


def _grey(scaled: np.ndarray) -> np.ndarray:
    """RGB(A) float pixels to luma; RGBA composited over white, as a viewer shows it."""
    rgb = scaled[..., :3]
    if scaled.shape[2] == 4:
        alpha = scaled[..., 3:4]
        rgb = rgb * alpha + (1.0 - alpha)
    return rgb @ _LUMA
