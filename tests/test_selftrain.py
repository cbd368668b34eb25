import json

import pandas as pd
import pytest

from conftest import SMALL_LABELS

from langsort.errors import LangsortError
from langsort.model import read_model_info
from langsort.selftrain import AVERAGED_TEACHERS, PSEUDO_PREFIX, pseudo_labelled, pseudo_recordings


def test_sure_files_teach_whole_other_files_their_confident_turns_and_the_rarer_language_is_topped_up():
    file = lambda path, status, language, confidence, mixed: dict(  # noqa: E731
        path=path, status=status, language=language, confidence=confidence, mixed=mixed, duration_s=60.0)
    files = pd.DataFrame([
        file("a.wav", "ok", "maya", 0.95, False),  # sure as a whole: all of it
        file("b.wav", "ok", "spanish", 0.63, True),  # bilingual: its confident turns
        file("c.wav", "unknown", None, 0.70, False),  # unsure as a whole: its confident turns, and a top-up
        file("d.wav", "ok", "english", 0.99, False),  # not a model language
        file("e.wav", "error", None, None, None),
    ])
    segment = lambda path, start, end, p_maya: dict(  # noqa: E731
        path=path, start_s=start, end_s=end, p_maya=p_maya, p_spanish=1 - p_maya)
    segments = pd.DataFrame([
        segment("a.wav", 0.5, 20.0, 0.95),
        segment("a.wav", 21.0, 40.0, 0.45),  # inside a file taken whole
        segment("b.wav", 0.0, 12.0, 0.03),
        segment("b.wav", 12.5, 30.0, 0.91),
        segment("b.wav", 30.5, 40.0, 0.25),  # not confident: spare spanish
        segment("b.wav", 41.0, 43.0, 0.01),  # shorter than a clip
        segment("b.wav", 44.0, 60.0, 0.08),
        segment("c.wav", 0.0, 5.0, 0.20),  # spare spanish, the most confident
        segment("c.wav", 5.0, 15.0, 0.04),
        segment("c.wav", 15.5, 22.0, 0.35),  # spare spanish below the floor
        segment("c.wav", 22.5, 59.0, 0.28),  # spare spanish past the balance
    ])
    # confident: maya 60 + 17.5 s, spanish 12 + 16 + 10 s; spanish is topped up by 39.5 s at most
    chosen = pseudo_labelled(files, segments, ["maya", "spanish"], 0.9, 3.0, floor=0.7)
    assert list(chosen.itertuples(index=False, name=None)) == [
        ("a.wav", "maya", 0.0, 60.0, True), ("b.wav", "spanish", 0.0, 12.0, False),
        ("b.wav", "maya", 12.5, 30.0, False), ("b.wav", "spanish", 30.5, 40.0, False),
        ("b.wav", "spanish", 44.0, 60.0, False), ("c.wav", "spanish", 0.0, 5.0, False),
        ("c.wav", "spanish", 5.0, 15.0, False)]
    recordings = pseudo_recordings(chosen, "/archive")
    assert [(r.file.source, r.file.path, r.file.label, r.windows) for r in recordings] == [
        ("/archive/a.wav", f"{PSEUDO_PREFIX}/maya/a.wav", "maya", None),
        ("/archive/b.wav", f"{PSEUDO_PREFIX}/maya/b.wav", "maya", ((12.5, 30.0),)),
        ("/archive/b.wav", f"{PSEUDO_PREFIX}/spanish/b.wav", "spanish", ((0.0, 12.0), (30.5, 40.0), (44.0, 60.0))),
        ("/archive/c.wav", f"{PSEUDO_PREFIX}/spanish/c.wav", "spanish", ((0.0, 5.0), (5.0, 15.0)))]


def test_self_training_adds_the_archive_to_the_training_side_only(ray_local, prepared_small, speech_cache, tmp_path):
    """Two real rounds: two teachers from successive seeds, averaged, label the archive; its
    confident stretches join training as `_pseudo/<language>/...` and never validation or
    test; the first student labels the archive for the second; MODEL_DIR holds the mean of
    the two students, whose ONNX export gives the mean of theirs."""
    import numpy as np

    from langsort import synth
    from langsort.export import export
    from langsort.predict import OnnxPredictor
    from langsort.selftrain import SelfTraining, fit_with_unlabelled
    from langsort.train.loop import MODEL_JSON, SAMPLE, TrainOptions

    archive = tmp_path / "archive"
    for i, language in enumerate(["maya", "spanish", "nahuatl", "spanish"]):
        synth.write(str(archive / f"tape-{i}.wav"), speech_cache(language, 8.0, seed=40 + i))
    (archive / "notes.txt").write_text("not audio")
    options = TrainOptions(weights="none", epochs=2, image_size=48, workers=1, batch_size=8, require_learning=False)
    lines = []
    # confidence 0: a two-epoch model is not confident, and the plumbing is what is tested here
    metrics = fit_with_unlabelled(str(prepared_small), str(tmp_path / "model"), options,
                                  SelfTraining(str(archive), rounds=2, min_confidence=0.0, teachers=2), progress=False,
                                  echo=lines.append)
    round_1, round_2 = metrics["self_training"]
    assert round_1["pseudo_labelled"] == 4 and round_1["archive_files"] == 5
    assert "4 of 5 archive files pseudo-labelled" in lines[0] and "by 2 teachers averaged" in lines[0]
    work = tmp_path / "model" / "self-training"
    teachers = [read_model_info(str(work / "round-0" / folder / "model.onnx")) for folder in ("model", "model-1")]
    assert [t.meta.details["options"]["seed"] for t in teachers] == [0, 1]
    averaged = read_model_info(str(work / "round-0" / AVERAGED_TEACHERS))
    assert averaged.meta.details["averages"] == [t.sha256 for t in teachers]
    labelled_by = pd.read_parquet(work / "round-1" / "labels" / "files.parquet").model_sha256
    assert set(labelled_by) == {averaged.sha256} and round_1["teachers"] == 2
    pseudo = pd.read_parquet(tmp_path / "model" / "self-training" / "round-1" / "pseudo" / "files.parquet")
    assert pseudo.path.str.startswith(f"{PSEUDO_PREFIX}/").all()
    assert pseudo.path.str.split("/", n=2).str[2].nunique() == 4  # a file per stretch's language, notes.txt not
    students = [work / f"round-{r}" / "model" for r in (1, 2)]
    student_1 = read_model_info(str(students[0] / "model.onnx"))
    assert round_2["teachers"] == 1 and "by the teacher" in lines[1]
    assert set(pd.read_parquet(work / "round-2" / "labels" / "files.parquet").model_sha256) == {student_1.sha256}
    for r, student in enumerate(students, 1):
        assert json.loads((student / MODEL_JSON).read_text())["train_only"] == [str(work / f"round-{r}" / "pseudo")]
    assert "the students of rounds 1, 2 averaged" in lines[2]

    model = tmp_path / "model"
    meta = json.loads((model / MODEL_JSON).read_text())
    assert meta["members"] == 2 and meta["averages"] == [str(s) for s in students]
    split = json.loads((model / "split.json").read_text())
    assert not [p for p in split if p.startswith(PSEUDO_PREFIX)]  # validation and test: labelled only
    assert json.loads((model / "metrics.json").read_text())["self_training"] == [round_1, round_2]
    grids = np.load(model / SAMPLE)["grids"].astype(np.float32)
    exports = [*(export(str(student)) for student in students), export(str(model), quantize="int8")]
    outputs = [OnnxPredictor(read_model_info(result.path)).predict_columns(grids) for result in exports]
    for output in (0, 1):  # clip and column probabilities
        np.testing.assert_allclose(outputs[2][output], (outputs[0][output] + outputs[1][output]) / 2, atol=1e-5)
    quantized = read_model_info(exports[2].quantized_path)  # the mean quantizes like any one model
    assert quantized.meta.members == 2 and quantized.labels == SMALL_LABELS
    assert OnnxPredictor(quantized).predict_columns(grids)[0].shape == outputs[2][0].shape


def test_pseudo_labels_outside_the_model_languages_are_refused(tmp_path):
    from langsort.train.data import train_only_split

    (tmp_path / "p").mkdir()
    pd.DataFrame([dict(path="_pseudo/english/x.wav", label="english", status="ok")]).to_parquet(
        tmp_path / "p" / "files.parquet")
    with pytest.raises(LangsortError, match="english"):
        train_only_split([str(tmp_path / "p")], ["maya", "spanish"])


def test_a_teacher_or_student_that_does_not_learn_is_left_out_and_the_run_keeps_a_model(
        ray_local, prepared_small, trained_small, speech_cache, tmp_path, monkeypatch):
    """Training from scratch on little data can draw a model that learns nothing where the one
    before it did (seen with three languages): a first-round teacher that does not learn is
    left out of the average, and a student that does not learn ends self-training with its
    teacher as the model, each said in a line, instead of the run ending with an error and no
    model. The failures are simulated here; test_train checks that a real one raises
    DidNotLearnError."""
    import shutil

    from langsort import synth
    from langsort.selftrain import WORK_DIR, SelfTraining, fit_with_unlabelled
    from langsort.train import loop

    archive = tmp_path / "archive"
    for i, language in enumerate(["maya", "spanish"]):
        synth.write(str(archive / f"tape-{i}.wav"), speech_cache(language, 8.0, seed=50 + i))
    model, work = tmp_path / "model", tmp_path / "model" / WORK_DIR
    teacher = work / "round-0" / "model"
    shutil.copytree(trained_small.model_dir, teacher)  # the first teacher learned, as a resumed run finds it
    why = "balanced accuracy on validation clips is 0.38, chance is 0.33"
    fits = []

    def does_not_learn(prepared_dir, model_dir, options, progress=True, train_only=()):
        fits.append((model_dir, options.seed, train_only))
        raise loop.DidNotLearnError("the model did not learn", why)

    monkeypatch.setattr(loop, "fit", does_not_learn)
    options = loop.TrainOptions(weights="none", epochs=2, image_size=48, workers=1, batch_size=8)
    lines = []
    metrics = fit_with_unlabelled(str(prepared_small), str(model), options,
                                  SelfTraining(str(archive), rounds=2, min_confidence=0.0, teachers=2),
                                  progress=False, echo=lines.append)

    student = str(work / "round-1" / "model")
    assert fits == [(str(work / "round-0" / "model-1"), 1, ()),  # the second teacher
                    (student, 0, (str(work / "round-1" / "pseudo"),))]  # no second round on the same teacher
    assert lines == [f"self-training: teacher 2 of 2 (seed 1) did not learn ({why}); left out of the average",
                     f"self-training round 1: the student did not learn ({why}; {student}/metrics.json); "
                     "keeping the model of round 0"]
    averaged = read_model_info(str(work / "round-0" / AVERAGED_TEACHERS))
    assert averaged.meta.details["averages"] == [read_model_info(str(teacher / "model.onnx")).sha256]
    assert set(pd.read_parquet(work / "round-1" / "labels" / "files.parquet").model_sha256) == {averaged.sha256}
    assert metrics["self_training"] == []
    for name in (loop.MODEL_JSON, loop.WEIGHTS):
        assert (model / name).read_bytes() == (teacher / name).read_bytes()
