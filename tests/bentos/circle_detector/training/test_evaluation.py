"""The model card's hand-written notes outlive a re-evaluation of the same model only."""

from __future__ import annotations

from pathlib import Path

from bentos.circle_detector.training.evaluation import NOTES_HEADING, hand_written_notes

NOTES = f"{NOTES_HEADING}\n\n- trained at git abc, then refitted.\n"


def card(version: str, notes: str = NOTES) -> str:
    return f"# Model card: circle_detector, version {version}\n\n## Training\n\n- x\n\n{notes}"


def test_notes_of_the_same_version_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "MODEL_CARD.md"
    path.write_text(card("4"))
    assert hand_written_notes(path, "4") == "\n" + NOTES


def test_a_new_version_starts_without_the_old_notes(tmp_path: Path) -> None:
    path = tmp_path / "MODEL_CARD.md"
    path.write_text(card("3"))
    assert hand_written_notes(path, "4") == ""
    assert hand_written_notes(path, "34") == ""  # "version 34" is not "version 4"'s card


def test_no_card_no_heading_or_a_binary_file_give_nothing(tmp_path: Path) -> None:
    path = tmp_path / "MODEL_CARD.md"
    assert hand_written_notes(path, "4") == ""
    path.write_text(card("4", notes="## Other\n"))
    assert hand_written_notes(path, "4") == ""
    path.write_text(card("4", notes=f"see {NOTES_HEADING} below\n"))  # not a heading
    assert hand_written_notes(path, "4") == ""
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert hand_written_notes(path, "4") == ""
