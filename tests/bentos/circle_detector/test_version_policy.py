"""Triton's version policy: both spellings, the selection, and clear errors for the rest."""

from __future__ import annotations

import pytest

from bentos.circle_detector.version_policy import PolicyError, VersionPolicy

AVAILABLE = ["10", "2", "1", "3"]  # numeric order, not string order: 1, 2, 3, 10


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("latest", ["10"]),
        ("latest:1", ["10"]),
        ("latest:2", ["3", "10"]),
        ("latest:9", ["1", "2", "3", "10"]),
        ("all", ["1", "2", "3", "10"]),
        ("specific:3,1", ["1", "3"]),
        (" specific: 2 ", ["2"]),
    ],
)
def test_the_variable_form_selects_oldest_first(text: str, selected: list[str]) -> None:
    policy = VersionPolicy.parse(text)
    assert policy.select(AVAILABLE) == selected
    assert VersionPolicy.parse(str(policy)) == policy  # str() is the variable's own spelling


@pytest.mark.parametrize(
    "text", ["", "latest:0", "latest:-1", "latest:x", "latest:²", "all:2", "specific:", "newest"]
)
def test_bad_variable_forms_say_what_is_expected(text: str) -> None:
    with pytest.raises(PolicyError, match="latest:N"):
        VersionPolicy.parse(text)


@pytest.mark.parametrize(
    "doc",
    [
        {"latest": {"num_versions": 2}},
        {"latest": {}},
        {"all": {}},
        {"specific": {"versions": [1, 3]}},
    ],
)
def test_the_json_form_round_trips(doc: dict) -> None:
    policy = VersionPolicy.from_config(doc)
    expected = {"latest": {"num_versions": 1}} if doc == {"latest": {}} else doc
    assert policy.as_config() == expected
    assert VersionPolicy.from_config(policy.as_config()) == policy


@pytest.mark.parametrize(
    ("doc", "phrase"),
    [
        ([], "one of"),
        ({"latest": {}, "all": {}}, "one of"),
        ({"latest": 2}, "must be an object"),
        ({"latest": {"num_versions": 0}}, "integer >= 1"),
        ({"latest": {"num_versions": True}}, "integer >= 1"),
        ({"latest": {"num_versions": "2"}}, "integer >= 1"),
        ({"specific": {"versions": []}}, "non-empty list"),
        ({"specific": {"versions": [True]}}, "non-empty list"),
        ({"all": {"x": 1}}, "use"),
        ({"newest": {}}, "use"),
    ],
)
def test_bad_json_forms_name_the_problem(doc: object, phrase: str) -> None:
    with pytest.raises(PolicyError, match=phrase):
        VersionPolicy.from_config(doc)


def test_a_specific_version_that_is_not_there_is_named() -> None:
    with pytest.raises(PolicyError, match=r"version\(s\) 7 .* \(it has 1, 2, 3, 10\)"):
        VersionPolicy.parse("specific:1,7").select(AVAILABLE)
    with pytest.raises(PolicyError, match="it has none"):
        VersionPolicy.parse("specific:1").select([])
