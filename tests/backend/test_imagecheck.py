"""Content checks of uploads: format and size from the bytes, each refusal with its status."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backend.errors import APIError
from backend.imagecheck import inspect_image
from tests.backend.helpers import circles_png, png_header_only


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("WEBP", "image/webp"),
    ],
)
def test_supported_formats_are_described(fmt, content_type):
    info = inspect_image(circles_png(seed=1, size=(40, 30), fmt=fmt), max_pixels=10_000)
    assert (info.format, info.content_type, info.width, info.height) == (fmt, content_type, 40, 30)


def test_sixteen_bit_and_palette_images_are_accepted():
    for mode in ("I;16", "P", "LA", "RGBA", "1"):
        out = io.BytesIO()
        Image.new(mode, (20, 20)).save(out, format="PNG")
        assert inspect_image(out.getvalue(), max_pixels=10_000).format == "PNG"


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 422, "empty"),
        (b"GIF89a" + b"\0" * 40, 415, "not a recognised"),
        (circles_png(seed=2, size=(40, 30))[:100], 422, "truncated"),
        (png_header_only(101, 100), 413, "over the limit of 10000"),
        (png_header_only(4, 400), 422, "at least 8"),
    ],
    ids=["empty", "gif", "truncated", "bomb", "too thin"],
)
def test_refusals_carry_their_status(data, status, words):
    with pytest.raises(APIError) as info:
        inspect_image(data, max_pixels=10_000)
    assert info.value.status_code == status and words in info.value.message
