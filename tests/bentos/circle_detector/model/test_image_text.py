"""BYTES elements as raw image files or base64 text of them (KServe's JSON convention)."""

from __future__ import annotations

import base64

import pytest

from bentos.circle_detector.model.image_text import image_file, is_image
from bentos.circle_detector.model.imageio import ImageDecodeError, ImageTooLargeError
from tests.bentos.circle_detector.images import circles_image, encode

PNG = encode(circles_image(32, 40, 1))
JPEG = encode(circles_image(32, 40, 2, channels=3), "JPEG")


@pytest.mark.parametrize("raw", [PNG, JPEG], ids=["png", "jpeg"])
def test_raw_image_bytes_are_used_as_they_are(raw):
    assert image_file(raw) is raw


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(PNG),
        base64.b64encode(JPEG),
        base64.urlsafe_b64encode(JPEG),
        b"data:image/png;base64," + base64.b64encode(PNG),
        b"  " + base64.b64encode(PNG) + b"\n",
    ],
    ids=["standard-png", "standard-jpeg", "urlsafe", "data-uri", "surrounding-space"],
)
def test_base64_text_of_an_image_is_decoded(text):
    decoded = image_file(text)
    assert decoded in (PNG, JPEG)
    assert is_image(decoded)


def test_urlsafe_text_really_uses_the_urlsafe_alphabet():
    text = base64.urlsafe_b64encode(JPEG)
    assert b"-" in text or b"_" in text  # else the test proves nothing
    assert image_file(text) == JPEG


@pytest.mark.parametrize(
    "element",
    [
        b"",
        b"not base64!",
        base64.b64encode(PNG)[:-1],  # padding gone
        base64.b64encode(PNG).replace(b"=", b"") + b"A",  # length not a multiple of 4
        b"ab+_" * 4,  # standard and urlsafe alphabets mixed
        b"\x00\x01\x02garbage",
    ],
    ids=["empty", "text", "no-padding", "bad-length", "mixed-alphabet", "binary-garbage"],
)
def test_not_base64_is_left_for_the_image_decoder(element):
    assert image_file(element) == element  # decode_image then refuses it by name (400)


@pytest.mark.parametrize(
    "element",
    [
        base64.b64encode(b"hello world, not an image"),
        b"abcd",
        b"data:image/png;base64," + base64.b64encode(b"GIF89a" + b"\0" * 32),
    ],
    ids=["base64-text", "four-letters", "data-uri-of-garbage"],
)
def test_base64_of_something_that_is_not_an_image_is_refused(element):
    with pytest.raises(ImageDecodeError, match=r"base64 text, but .* not an image"):
        image_file(element)


def test_data_uri_without_valid_base64_is_refused():
    with pytest.raises(ImageDecodeError, match="data: URI does not carry valid base64"):
        image_file(b"data:image/png;base64,not base64!")


def test_oversized_base64_is_refused_from_its_length_before_decoding():
    text = base64.b64encode(PNG)
    with pytest.raises(ImageTooLargeError, match=f"decodes to {len(PNG)} bytes, over the limit"):
        image_file(text, max_bytes=len(PNG) - 1)
    assert image_file(text, max_bytes=len(PNG)) == PNG
    # The limit is checked from the length alone: megabytes of 'A' are never decoded.
    with pytest.raises(ImageTooLargeError):
        image_file(b"A" * (4 << 20), max_bytes=1 << 20)
