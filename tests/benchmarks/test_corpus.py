"""`benchmarks/corpus.py`: the images every benchmark sends decode as the Bento decodes them."""

from __future__ import annotations

from benchmarks.corpus import REAL, samples
from bentos.circle_detector.model.imageio import decode_image


def test_corpus_mixes_real_and_synthetic_images_of_several_sizes():
    corpus = samples((64, 96), True)
    names = [s.name for s in corpus]
    assert len(corpus) == len(REAL) + 4
    assert names[0].startswith("real-") and names[1].startswith("synthetic-")
    assert {(s.height, s.width) for s in corpus if s.name.startswith("synthetic-")} == {
        (64, 64),
        (96, 96),
    }
    assert {s.name.rsplit(".", 1)[1] for s in corpus} == {"png", "jpg"}
    for s in corpus:
        image = decode_image(s.data)
        assert image.shape[:2] == (s.height, s.width), s.name


def test_corpus_is_the_same_every_time():
    assert samples((64,), False) == samples.__wrapped__((64,), False)
    assert all(s.name.startswith("synthetic-") for s in samples((64,), False))
