"""A BYTES element as an image file: raw bytes, or base64 text of one (KServe's JSON convention).

KServe's SDK examples send images as base64 strings in BYTES; the V2 binary extension and gRPC
send raw file bytes. Both are accepted, decided by content so that neither can be mistaken for
the other: raw bytes that open as an image are used as they are; otherwise strict base64 text
(standard or urlsafe alphabet, padded, optionally after a `data:image/...;base64,` prefix) whose
decoded bytes open as an image is used decoded; anything else is left for `decode_image` to
refuse with its usual message, or refused here when the text is base64 but not of an image.
"""

from __future__ import annotations

import binascii
import io
import re
import warnings

from PIL import Image

from .imageio import SUPPORTED_FORMATS, ImageDecodeError, ImageTooLargeError

#: Default cap on an element's decoded size: the REST limit on a whole body with binary tensors.
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
_DATA_URI = re.compile(rb"data:image/[A-Za-z0-9.+-]+;base64,")
_NOT_STANDARD = re.compile(rb"[^A-Za-z0-9+/=]")
_NOT_URLSAFE = re.compile(rb"[^A-Za-z0-9_=-]")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def image_file(element: bytes, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The image file an element carries: itself, or its base64 text decoded.

    Raises `ImageTooLargeError` when base64 text would decode past `max_bytes` (checked from
    its length, before decoding) and `ImageDecodeError` when it is base64 but not of an image.
    """
    return image_file_and_pixels(element, max_bytes)[0]


def image_file_and_pixels(
    element: bytes, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[bytes, int]:
    """`image_file` and its width x height from the header, with the header opened once (0
    when it cannot be read: `decode_image` then reports the precise error)."""
    pixels = _supported_header_pixels(element)
    if pixels is not None:
        return element, pixels
    text = element.strip()
    prefix = _DATA_URI.match(text)
    if prefix:
        text = text[prefix.end() :]
    decoded = _strict_base64(text, max_bytes)
    if decoded is None:
        if prefix:
            raise ImageDecodeError("data: URI does not carry valid base64 text")
        return element, header_pixels(element)  # decode_image names the problem
    pixels = _supported_header_pixels(decoded)
    if pixels is None:
        raise ImageDecodeError("bytes are base64 text, but what it decodes to is not an image file")
    return decoded, pixels


def _strict_base64(text: bytes, max_bytes: int) -> bytes | None:
    """Padded base64 in one alphabet (standard or urlsafe) decoded, or None when it is not."""
    if not text or len(text) % 4 or (_NOT_STANDARD.search(text) and _NOT_URLSAFE.search(text)):
        return None
    decoded_size = len(text) // 4 * 3 - (len(text) - len(text.rstrip(b"=")))
    if decoded_size > max_bytes:  # before decoding: the text's length says the size
        raise ImageTooLargeError(
            f"base64 text decodes to {decoded_size} bytes, over the limit of {max_bytes}"
        )
    try:
        return binascii.a2b_base64(text.translate(_TO_STANDARD), strict_mode=True)
    except binascii.Error:
        return None


def is_image(data: bytes) -> bool:
    """Whether the bytes open as one of the supported formats (header only, no pixels)."""
    return _supported_header_pixels(data) is not None


def _supported_header_pixels(data: bytes) -> int | None:
    """Width x height when the bytes open as a supported format (0 for a decompression bomb,
    which `decode_image` refuses as too large); None when they do not."""
    if not data:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=sorted(SUPPORTED_FORMATS)) as img:
                return int(img.width) * int(img.height)
    except Image.DecompressionBombError:
        return 0  # an image; decode_image refuses it as too large
    except Exception:  # PIL raises anything on crafted headers: not an image we can use
        return None


def header_pixels(data: bytes) -> int:
    """Width x height from an encoded image's header in any format PIL reads, without
    decoding (0 if unreadable: `decode_image` then reports the precise error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return int(img.width) * int(img.height)
    except Exception:
        return 0
