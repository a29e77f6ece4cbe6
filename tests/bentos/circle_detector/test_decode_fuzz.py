"""`decode_image` raises only `ImageDecodeError`: crafted TIFFs and a short deterministic fuzz
(the long one is `make fuzz`)."""

from __future__ import annotations

import pytest

from bentos.circle_detector.model.imageio import ImageDecodeError, decode_image
from tests.fuzz import decode_image as fuzz


def crafted_tiff(field_type: int) -> bytes:
    """A valid TIFF whose StripOffsets tag (273) claims another field type: PIL then raises
    TypeError ("'IFDRational' object cannot be interpreted as an integer")."""
    data = bytearray(fuzz.seeds()["tiff"])
    for at in fuzz._tiff_entries(data):
        if int.from_bytes(data[at : at + 2], "little") == 273:
            data[at + 2 : at + 4] = field_type.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize("field_type", [2, 5, 10, 11, 12])
def test_crafted_tiffs_are_decode_errors(field_type):
    with pytest.raises(ImageDecodeError, match="corrupt"):
        decode_image(crafted_tiff(field_type))


def test_seeds_decode():
    """Every seed but GIF (not a format the model takes) decodes: mutants start valid."""
    for name, data in fuzz.seeds().items():
        if name == "gif":
            with pytest.raises(ImageDecodeError, match="unsupported image format"):
                decode_image(data)
        else:
            assert decode_image(data).shape[:2] in ((24, 32), (16, 16)), name


def test_mutants_raise_only_decode_errors(tmp_path):
    """600 mutants of PNG/JPEG/TIFF/BMP/GIF/WebP files, seed 0: the same cases every run."""
    assert fuzz.run_mutational(600, 0, tmp_path, None) == 0
    assert not list(tmp_path.iterdir())


def test_fuzz_command_line(capsys):
    with pytest.raises(SystemExit) as done:
        fuzz.main(["--help"])
    assert done.value.code == 0
    assert "--atheris" in capsys.readouterr().out
    assert fuzz.main(["--cases", "50", "--seed", "3"]) == 0
