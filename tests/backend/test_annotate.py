"""Drawing detections over the image."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from backend.annotate import annotated_png
from backend.models import Detection


def test_circle_and_box_are_drawn_where_the_detection_is():
    src = io.BytesIO()
    Image.new("L", (100, 80), 128).save(src, format="PNG")
    det = Detection(rank=0, x1=20, y1=10, x2=60, y2=50, cx=40, cy=30, radius=20, score=0.9)
    with Image.open(io.BytesIO(annotated_png(src.getvalue(), [det]))) as img:
        assert img.format == "PNG" and img.size == (100, 80)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    assert tuple(rgb[30, 60]) == (255, 40, 40)  # right-most point of the circle
    assert tuple(rgb[10, 40]) in {(255, 40, 40), (0, 160, 255)}  # top: circle over box
    assert tuple(rgb[70, 90]) == (128, 128, 128)  # far away: untouched
    assert (rgb[10, 20:61] != 128).any(axis=-1).all()  # the box's top edge


def test_no_detections_gives_the_image_back_as_png():
    src = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(src, format="JPEG", quality=100)
    with Image.open(io.BytesIO(annotated_png(src.getvalue(), []))) as img:
        assert img.format == "PNG" and img.size == (16, 16)
