"""Fuzzing `decode_image`: mutated PNG, JPEG, TIFF, BMP, GIF and WebP files may only ever
raise `ImageDecodeError` (a 400 over REST, INVALID_ARGUMENT over gRPC).

Two engines share the seeds and the check. The mutational one (deterministic: a seed gives
the same cases) needs nothing but the standard library; the normal test suite runs a few
hundred of its cases. `--atheris` runs Google's coverage-guided atheris instead (`make fuzz`
installs it). Crashing inputs are written to `--crashes`.

    python -m tests.fuzz.decode_image [--cases 20000] [--seed 0] [--atheris] [--seconds 300]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from bentos.circle_detector.model.imageio import ImageDecodeError, decode_image

#: Small enough that a mutated header claiming a huge image is refused, not decoded.
MAX_PIXELS = 256 * 256
#: Values that break parsers: zero, one, sign and width boundaries.
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                0xFFFFFFFF]  # fmt: skip


def seeds() -> dict[str, bytes]:
    """One small file per format and flavour (PIL writes them; nothing is downloaded)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    grey16 = Image.fromarray(rng.integers(0, 65535, (16, 16), dtype=np.uint16))
    out: dict[str, bytes] = {}
    for name, image, fmt, kwargs in [
        ("png", rgb, "PNG", {}),
        ("png16", grey16, "PNG", {}),
        ("png-palette", rgb.convert("P"), "PNG", {}),
        ("jpeg", rgb, "JPEG", {"quality": 80}),
        ("jpeg-progressive", rgb, "JPEG", {"progressive": True}),
        ("tiff", rgb, "TIFF", {}),
        ("tiff-lzw", rgb, "TIFF", {"compression": "tiff_lzw"}),
        ("tiff-deflate16", grey16, "TIFF", {"compression": "tiff_adobe_deflate"}),
        ("tiff-cmyk", rgb.convert("CMYK"), "TIFF", {}),
        ("bmp", rgb, "BMP", {}),
        ("bmp-1bit", rgb.convert("1"), "BMP", {}),
        ("gif", rgb.convert("P"), "GIF", {}),
        ("webp", rgb, "WEBP", {"quality": 50}),
    ]:
        buf = io.BytesIO()
        image.save(buf, format=fmt, **kwargs)
        out[name] = buf.getvalue()
    return out


def _tiff_entries(buf: bytearray) -> list[int]:
    """Offsets of the 12-byte entries of a little-endian TIFF's first IFD (none if not one)."""
    if buf[:4] != b"II*\x00" or len(buf) < 8:
        return []
    ifd = int.from_bytes(buf[4:8], "little")
    if ifd + 2 > len(buf):
        return []
    count = int.from_bytes(buf[ifd : ifd + 2], "little")
    return [ifd + 2 + 12 * i for i in range(count) if ifd + 14 + 12 * i <= len(buf)]


def _mutate_tiff_tag(buf: bytearray, rng: random.Random) -> None:
    """Give one IFD entry another field type, count or value: what makes PIL's TIFF plugin
    raise TypeError, OverflowError or ZeroDivisionError rather than a decoding error."""
    entries = _tiff_entries(buf)
    if not entries:
        return
    at = rng.choice(entries)
    part = rng.randrange(3)
    if part == 0:  # field type: BYTE, ASCII, SHORT, LONG, RATIONAL, ... DOUBLE, IFD, bogus
        buf[at + 2 : at + 4] = rng.choice(
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 99]
        ).to_bytes(2, "little")
    elif part == 1:
        buf[at + 4 : at + 8] = rng.choice([*_INTERESTING, 0, 2, 3, 4]).to_bytes(4, "little")
    else:
        buf[at + 8 : at + 12] = rng.choice(_INTERESTING).to_bytes(4, "little")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: byte flips, interesting integers, cuts, copies, insertions;
    TIFFs also get structured edits of their tags."""
    buf = bytearray(data)
    if _tiff_entries(buf) and rng.random() < 0.7:
        for _ in range(rng.randint(1, 3)):
            _mutate_tiff_tag(buf, rng)
        if rng.random() < 0.7:
            return bytes(buf)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf = bytearray(b"\x00")
        op = rng.randrange(6)
        pos = rng.randrange(len(buf))
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos] = rng.randrange(256)
        elif op == 2:  # an interesting integer, either endianness, over 1, 2 or 4 bytes
            width = rng.choice((1, 2, 4))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            order = rng.choice(("little", "big"))
            buf[pos : pos + width] = value.to_bytes(width, order)
        elif op == 3:
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 4:  # copy a block elsewhere (duplicates tags, chunks, markers)
            start = rng.randrange(len(buf))
            block = buf[start : start + rng.randint(1, 32)]
            buf[pos:pos] = block
        else:
            buf = buf[:pos]  # truncation
    return bytes(buf)


def check(data: bytes) -> None:
    """The property: decoding succeeds or raises `ImageDecodeError`, nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about most corrupt tags
        with contextlib.suppress(ImageDecodeError):
            decode_image(data, MAX_PIXELS)


def cases(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` deterministic mutants, round-robin over the seed files."""
    rng = random.Random(seed)
    files = sorted(seeds().items())
    for i in range(count):
        name, data = files[i % len(files)]
        yield name, mutate(data, rng)


def run_mutational(count: int, seed: int, crashes: Path, seconds: float | None) -> int:
    """Run the cases; returns how many raised something other than `ImageDecodeError`."""
    failures = 0
    started = time.monotonic()
    for i, (name, data) in enumerate(cases(count, seed)):
        if seconds is not None and time.monotonic() - started > seconds:
            print(f"time is up after {i} cases")
            break
        try:
            check(data)
        except Exception:
            failures += 1
            crashes.mkdir(parents=True, exist_ok=True)
            path = crashes / f"{name}-{seed}-{i}.bin"
            path.write_bytes(data)
            print(f"case {i} ({name}) -> {path}:\n{traceback.format_exc()}", file=sys.stderr)
    else:
        print(f"{count} cases")
    return failures


def run_atheris(argv: list[str]) -> None:  # pragma: no cover - needs atheris
    import atheris

    atheris.instrument_all()  # coverage of PIL's pure-Python plugins (already imported)
    corpus = seeds()
    rng = random.Random(0)
    files = list(corpus.values())

    def one_input(data: bytes) -> None:
        # atheris mutates freely; start half the inputs from a real file so headers parse.
        if data and data[0] & 1:
            data = mutate(files[data[0] % len(files)] + data[1:], rng)
        check(data)

    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.decode_image",
        description="Fuzz decode_image: only ImageDecodeError may come out of it.",
    )
    parser.add_argument("--cases", type=int, default=20_000, help="mutants to try (20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument(
        "--crashes",
        type=Path,
        default=Path("build/fuzz/crashes"),
        help="where failing inputs go (build/fuzz/crashes)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path("build/fuzz/corpus"),
        help="atheris: its corpus, started with the seed files (build/fuzz/corpus)",
    )
    parser.add_argument(
        "--atheris", action="store_true", help="coverage-guided fuzzing with atheris instead"
    )
    args, rest = parser.parse_known_args(argv)
    if args.atheris:
        args.crashes.mkdir(parents=True, exist_ok=True)  # libFuzzer wants it to exist
        args.corpus.mkdir(parents=True, exist_ok=True)
        for name, data in seeds().items():
            (args.corpus / f"seed-{name}").write_bytes(data)
        seconds = [f"-max_total_time={int(args.seconds)}"] if args.seconds else []
        run_atheris(
            [sys.argv[0], *rest, *seconds, f"-artifact_prefix={args.crashes}/", str(args.corpus)]
        )
        return 0
    failures = run_mutational(args.cases, args.seed, args.crashes, args.seconds)
    print(f"{failures} inputs raised something other than ImageDecodeError")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
