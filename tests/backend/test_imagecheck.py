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


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_damaged_files_are_always_a_4xx(fmt):
    """Random byte flips and cuts of a valid file: an APIError 4xx each time, never a crash."""
    import random

    good = circles_png(seed=5, size=(64, 48), fmt=fmt)
    rng = random.Random(fmt)
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        try:
            inspect_image(bytes(data), max_pixels=10_000)
        except APIError as exc:
            assert exc.status_code in (413, 415, 422), exc.message


def test_jpegs_are_checked_at_an_eighth_of_their_pixels():
    from backend.imagecheck import read_header

    out = io.BytesIO()
    Image.new("RGB", (4096, 2048), (90, 120, 30)).save(out, format="JPEG")
    info = read_header(out.getvalue(), max_pixels=4096 * 4096)
    assert info.check_bytes == 512 * 256 * 4
    out = io.BytesIO()
    Image.new("L", (4096, 2048)).save(out, format="PNG")
    assert read_header(out.getvalue(), max_pixels=4096 * 4096).check_bytes == 4096 * 2048
