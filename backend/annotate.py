"""Draw detected circles over an image, for `GET .../annotated`."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

from backend.models import Detection


def annotated_png(data: bytes, detections: Sequence[Detection]) -> bytes:
    """PNG of the image (RGB) with each circle and its box outlined."""
    with Image.open(io.BytesIO(data)) as src:
        src.load()
        img = src.convert("RGB") if src.mode not in ("RGB",) else src.copy()
    draw = ImageDraw.Draw(img)
    width = max(1, round(min(img.size) / 200))
    for det in detections:
        draw.rectangle((det.x1, det.y1, det.x2, det.y2), outline=(0, 160, 255), width=width)
        r = det.radius
        draw.ellipse(
            (det.cx - r, det.cy - r, det.cx + r, det.cy + r), outline=(255, 40, 40), width=width
        )
        draw.text((det.x1 + 2, det.y1 + 2), f"{det.score:.2f}", fill=(255, 255, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
