"""The single-process server finds the model in BentoML's store layout without BentoML."""

from __future__ import annotations

import pytest

from bentos.circle_detector.model.artifacts import ModelFileError
from bentos.circle_detector.model_store import model_folder


def _store(root, versions, latest):
    models = root / "models" / "circle-detector"
    for v in versions:
        (models / v).mkdir(parents=True)
    (models / "latest").write_text(latest)
    return models


def test_latest_and_explicit_versions(tmp_path, monkeypatch):
    monkeypatch.delenv("BENTO_PATH", raising=False)
    models = _store(tmp_path, ["2-aaa", "2-bbb"], "2-bbb")
    assert model_folder("circle-detector:latest", tmp_path) == models / "2-bbb"
    assert model_folder("circle-detector", tmp_path) == models / "2-bbb"
    assert model_folder("circle-detector:2-aaa", tmp_path) == models / "2-aaa"


def test_a_containerized_bentos_own_models_come_first(tmp_path, monkeypatch):
    home, bento = tmp_path / "home", tmp_path / "bento"
    _store(home, ["1-old"], "1-old")
    packed = _store(bento, ["2-new"], "2-new")
    monkeypatch.setenv("BENTOML_HOME", str(home))
    monkeypatch.setenv("BENTO_PATH", str(bento))
    assert model_folder("circle-detector:latest") == packed / "2-new"
    monkeypatch.delenv("BENTO_PATH")
    assert model_folder("circle-detector:latest").name == "1-old"


@pytest.mark.parametrize("tag", ["circle-detector:latest", "circle-detector:9-nope", "other"])
def test_a_missing_model_says_how_to_import_it(tmp_path, monkeypatch, tag):
    monkeypatch.delenv("BENTO_PATH", raising=False)
    _store(tmp_path, ["2-aaa"], "2-gone")
    with pytest.raises(ModelFileError, match="circle-detector import-model"):
        model_folder(tag, tmp_path)
