"""Draw detected circles over an image (`GET .../annotated`) and make thumbnails.

Both decode downscaled where the format allows (PIL's JPEG draft mode decodes at 1/2, 1/4 or
1/8 scale straight from the DCT) and shrink with `Image.thumbnail` (reduce, then resample), so
a 4096x4096 photo costs a fraction of its full-size pixels. `*_cost` says how much decoded-pixel
memory each takes, for the process-wide budget (backend/budget.py).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

from backend.imagecheck import decoding, pixel_bytes
from backend.models import Detection


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decoded_size(fmt: str, width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size PIL decodes to before shrinking: JPEG draft goes down to at most 1/8, >= target."""
    if fmt != "JPEG":
        return width, height
    tw, th = _fit(width, height, max_side)
    scale = 1
    while scale < 8 and width // (scale * 2) >= tw and height // (scale * 2) >= th:
        scale *= 2
    return -(-width // scale), -(-height // scale)


def shrink_cost(fmt: str, width: int, height: int, max_side: int) -> int:
    """Decoded-pixel bytes `_open_shrunk` holds at its peak (decoded + shrunk + RGB copy)."""
    dw, dh = _decoded_size(fmt, width, height, max_side)
    ow, oh = _fit(width, height, max_side)
    return pixel_bytes(dw, dh, "RGB") + 2 * pixel_bytes(ow, oh, "RGB")


def _open_shrunk(data: bytes, max_side: int) -> tuple[Image.Image, float]:
    """The image as RGB, at most `max_side` on its longest side, and its scale to the original."""
    with decoding("the stored image cannot be decoded"), Image.open(io.BytesIO(data)) as src:
        width = src.width
        target = _fit(src.width, src.height, max_side)
        if src.format == "JPEG":
            src.draft("RGB", target)
        src.load()
        img = src if src.mode == "RGB" else src.convert("RGB")
        if max(img.size) > max_side:  # a new image: `src` is closed on leaving the block
            img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
        elif img is src:
            img = src.copy()
    return img, img.width / width


def annotated_png(data: bytes, detections: Sequence[Detection], max_side: int = 2048) -> bytes:
    """PNG of the image (RGB, at most `max_side` px) with each circle and its box outlined."""
    img, s = _open_shrunk(data, max_side)
    draw = ImageDraw.Draw(img)
    width = max(1, round(min(img.size) / 200))
    for det in detections:
        draw.rectangle(
            (det.x1 * s, det.y1 * s, det.x2 * s, det.y2 * s), outline=(0, 160, 255), width=width
        )
        cx, cy, r = det.cx * s, det.cy * s, det.radius * s
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(255, 40, 40), width=width)
        draw.text((det.x1 * s + 2, det.y1 * s + 2), f"{det.score:.2f}", fill=(255, 255, 0))
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def thumbnail_jpeg(data: bytes, side: int) -> bytes:
    """A small JPEG of the image, at most `side` px on its longest side (history page)."""
    img, _ = _open_shrunk(data, side)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=80)
    return out.getvalue()
