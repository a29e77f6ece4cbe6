"""Decoding untrusted bytes and normalising every pixel layout."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bentos.circle_detector.model.imageio import (
    ImageDecodeError,
    ImageTooLargeError,
    decode_image,
    to_gray_float,
)


def encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_round_trip(rgb: np.ndarray, fmt: str) -> None:
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode_image(encode(rgb, fmt, **kwargs))
    assert decoded.shape == rgb.shape
    np.testing.assert_array_equal(decoded, rgb)


def test_jpeg_decodes_to_the_right_shape(rgb: np.ndarray) -> None:
    decoded = decode_image(encode(rgb, "JPEG", quality=95))
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8


def test_sixteen_bit_png_keeps_its_depth() -> None:
    array = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    decoded = decode_image(encode(array, "PNG"))
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, array)


def test_palette_and_grey_alpha_become_rgb_or_rgba() -> None:
    img = Image.new("P", (20, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    assert decode_image(buf.getvalue()).shape == (20, 20, 3)
    buf = io.BytesIO()
    Image.new("LA", (20, 20)).save(buf, format="PNG")
    assert decode_image(buf.getvalue()).shape == (20, 20, 4)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")


def test_non_image_bytes_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        decode_image(b"%PDF-1.4 definitely not an image" * 10)


def test_truncated_png_is_refused(rgb: np.ndarray) -> None:
    data = encode(rgb, "PNG")
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_unsupported_format_is_named(rgb: np.ndarray) -> None:
    with pytest.raises(ImageDecodeError, match="unsupported image format 'GIF'"):
        decode_image(encode(rgb, "GIF"))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (CRC fixed, data left as it was)."""
    data = bytearray(encode(np.zeros((8, 8), dtype=np.uint8), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("side", [5000, 30000])
def test_decompression_bomb_is_refused_from_the_header(side: int) -> None:
    with pytest.raises(ImageTooLargeError, match=r"over the limit|decompression bomb"):
        decode_image(bomb_png(side, side), max_pixels=4096 * 4096)


def test_pixel_limit_is_configurable(rgb: np.ndarray) -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(encode(rgb, "PNG"), max_pixels=100)


def test_tiny_images_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="at least"):
        decode_image(encode(np.zeros((4, 100), dtype=np.uint8), "PNG"))


@pytest.mark.parametrize(
    "array",
    [
        np.full((16, 16), 128, dtype=np.uint8),
        np.full((16, 16, 1), 128, dtype=np.uint8),
        np.full((16, 16, 3), 128, dtype=np.uint8),
        np.dstack([np.full((16, 16, 3), 128, dtype=np.uint8), np.full((16, 16), 255, np.uint8)]),
        np.full((16, 16), 128 * 257, dtype=np.uint16),
        np.full((16, 16), 128 / 255, dtype=np.float32),
    ],
    ids=["grey", "grey1", "rgb", "rgba-opaque", "grey16", "float"],
)
def test_every_layout_normalises_to_the_same_grey(array: np.ndarray) -> None:
    grey = to_gray_float(array)
    assert grey.shape == (16, 16) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, 128 / 255, atol=1e-3)


def test_transparent_pixels_composite_over_white() -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    np.testing.assert_allclose(to_gray_float(rgba), 1.0)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((16, 16, 2), dtype=np.uint8), "must be"),
        (np.zeros((4, 16), dtype=np.uint8), "at least"),
        (np.zeros((16, 16), dtype=np.int32), "unsupported pixel type"),
        (np.zeros(16, dtype=np.uint8), "must be"),
    ],
)
def test_bad_arrays_are_refused_with_a_reason(array: np.ndarray, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        to_gray_float(array)
