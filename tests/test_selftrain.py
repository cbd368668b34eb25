import json

import pandas as pd
import pytest

from langsort.errors import LangsortError
from langsort.selftrain import PSEUDO_PREFIX, confident_files, pseudo_recordings


def test_only_confident_single_language_files_become_pseudo_labels():
    files = pd.DataFrame([
        dict(path="a.wav", status="ok", language="maya", confidence=0.95, mixed=False),
        dict(path="b.wav", status="ok", language="spanish", confidence=0.70, mixed=False),  # not confident
        dict(path="c.wav", status="ok", language="maya", confidence=0.99, mixed=True),  # two languages
        dict(path="d.wav", status="unknown", language=None, confidence=0.5, mixed=None),
        dict(path="e.wav", status="error", language=None, confidence=None, mixed=None),
        dict(path="f.wav", status="reviewed", language="english", confidence=1.0, mixed=False),
        dict(path="g/h.wav", status="ok", language="spanish", confidence=0.90, mixed=False),
    ])
    chosen = confident_files(files, ["maya", "spanish"], 0.9)
    assert list(chosen.path) == ["a.wav", "g/h.wav"]
    recordings = pseudo_recordings(chosen, "/archive")
    assert [(r.file.source, r.file.path, r.file.label) for r in recordings] == [
        ("/archive/a.wav", f"{PSEUDO_PREFIX}/maya/a.wav", "maya"),
        ("/archive/g/h.wav", f"{PSEUDO_PREFIX}/spanish/g/h.wav", "spanish")]


def test_self_training_adds_the_archive_to_the_training_side_only(ray_local, prepared_small, speech_cache, tmp_path):
    """A real round: the teacher labels the archive, its files join training as
    `_pseudo/<language>/...` and never validation or test; MODEL_DIR holds the student."""
    from langsort import synth
    from langsort.selftrain import SelfTraining, fit_with_unlabelled
    from langsort.train.loop import MODEL_JSON, TrainOptions

    archive = tmp_path / "archive"
    for i, language in enumerate(["maya", "spanish", "maya", "spanish"]):
        synth.write(str(archive / f"tape-{i}.wav"), speech_cache(language, 8.0, seed=40 + i))
    (archive / "notes.txt").write_text("not audio")
    options = TrainOptions(weights="none", epochs=2, image_size=48, workers=1, batch_size=8, require_learning=False)
    lines = []
    # confidence 0: a two-epoch model is not confident, and the plumbing is what is tested here
    metrics = fit_with_unlabelled(str(prepared_small), str(tmp_path / "model"), options,
                                  SelfTraining(str(archive), rounds=1, min_confidence=0.0), progress=False,
                                  echo=lines.append)
    (round_1,) = metrics["self_training"]
    assert round_1["pseudo_labelled"] == 4 and round_1["archive_files"] == 5
    assert "4 of 5 archive files pseudo-labelled" in lines[0]
    pseudo = pd.read_parquet(tmp_path / "model" / "self-training" / "round-1" / "pseudo" / "files.parquet")
    assert pseudo.path.str.startswith(f"{PSEUDO_PREFIX}/").all() and len(pseudo) == 4
    model = tmp_path / "model"
    assert (model / MODEL_JSON).is_file()
    assert json.loads((model / MODEL_JSON).read_text())["train_only"] == [str(model / "self-training" / "round-1" / "pseudo")]
    split = json.loads((model / "split.json").read_text())
    assert not [p for p in split if p.startswith(PSEUDO_PREFIX)]  # validation and test: labelled only
    assert json.loads((model / "metrics.json").read_text())["self_training"] == [round_1]


def test_pseudo_labels_outside_the_model_languages_are_refused(tmp_path):
    from langsort.train.data import train_only_split

    (tmp_path / "p").mkdir()
    pd.DataFrame([dict(path="_pseudo/english/x.wav", label="english", status="ok")]).to_parquet(
        tmp_path / "p" / "files.parquet")
    with pytest.raises(LangsortError, match="english"):
        train_only_split([str(tmp_path / "p")], ["maya", "spanish"])
