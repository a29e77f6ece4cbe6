"""Unit tests of the upload reader's pure parts (the streaming paths run against real servers in
tests/backend/api/routes/test_images_bad_input.py)."""

from __future__ import annotations

import pytest

from backend.uploads import clean_filename


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.jpg", "evil.jpg"),
        ("a\x00b\x1f\x7fc.png", "abc.png"),
        ("  spaced.png  ", "spaced.png"),
        ("/", ""),
        ("x" * 300, "x" * 255),
        ("ünïcödé.png", "ünïcödé.png"),
    ],
)
def test_clean_filename_keeps_only_a_printable_base_name(raw, clean):
    assert clean_filename(raw) == clean
