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


def test_big_images_are_drawn_scaled_with_their_circles():
    src = io.BytesIO()
    Image.new("L", (4000, 2000), 128).save(src, format="JPEG")
    det = Detection(rank=0, x1=800, y1=400, x2=1600, y2=1200, cx=1200, cy=800, radius=400, score=1)
    with Image.open(io.BytesIO(annotated_png(src.getvalue(), [det], max_side=1000))) as img:
        assert img.size == (1000, 500)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    assert tuple(rgb[200, 400]) == (255, 40, 40)  # (1600, 800) / 4: the circle's right edge
    assert abs(rgb[200, 300] - 128).max() <= 2  # its centre: untouched


def test_thumbnails_are_small_jpegs_and_costs_count_the_downscaled_decode():
    from backend.annotate import shrink_cost, thumbnail_jpeg

    src = io.BytesIO()
    Image.new("RGB", (4096, 4096), (9, 9, 9)).save(src, format="JPEG")
    with Image.open(io.BytesIO(thumbnail_jpeg(src.getvalue(), 256))) as img:
        assert (img.format, img.size) == ("JPEG", (256, 256))
    assert shrink_cost("JPEG", 4096, 4096, 256) == 512 * 512 * 4 + 2 * 256 * 256 * 4
    assert shrink_cost("PNG", 4096, 4096, 256) == 4096 * 4096 * 4 + 2 * 256 * 256 * 4
