"""People's decisions flowing back: sort follows them, report measures the model against
them and names every file, prepare --reviewed learns from them."""

from __future__ import annotations

import datetime as dt
import json
import os

import pandas as pd
import pytest
import review_corpus
from typer.testing import CliRunner

from langsort import manifest, reviews
from langsort.audio import AudioInfo
from langsort.clips import cut_spans
from langsort.corpus import InputFile
from langsort.prepare import PrepareConfig, plan_spans
from langsort.report import write
from langsort.sort import UNKNOWN_DIR, plan

LABELS = review_corpus.LABELS
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def file_row(path, status="ok", language="spanish", mixed=False, duration=20.0, error=None):
    return dict(path=path, status=status, language=language if status == "ok" else None,
                confidence=0.7 if status == "ok" else None, duration_s=duration, n_clips=4, error=error,
                p_maya=0.3, p_spanish=0.7, model_sha256="m", languages=[language] * (status == "ok"), mixed=mixed)


@pytest.fixture
def labelled(tmp_path):
    """Manifests (no audio needed) for: a Spanish file, a mixed one, an unknown one, an unreadable one."""
    archive, manifests = tmp_path / "archive", tmp_path / "manifests"
    files = [file_row("a/one.wav"), file_row("b/mixed two.wav", mixed=True),
             file_row("c/quiet.wav", status="unknown", error="no speech found"),
             file_row("d/broken.mp3", status="error", error="not readable as audio")]
    segments = [dict(path="b/mixed two.wav", segment_index=0, start_s=0.0, end_s=12.0, language="spanish"),
                dict(path="b/mixed two.wav", segment_index=1, start_s=12.0, end_s=20.0, language="maya")]
    review_corpus.write_manifests(str(manifests), str(archive), files, [], segments)
    return archive, manifests, pd.DataFrame(files)


def decide(manifests, files, path, language, start=None, end=None, minutes=0):
    return reviews.append(str(manifests), reviews.Review(path, language, start, end), files,
                          now=T0 + dt.timedelta(minutes=minutes))


def test_the_latest_decision_per_path_and_stretch_counts(labelled):
    _, manifests, files = labelled
    decide(manifests, files, "a/one.wav", "maya", minutes=1)
    decide(manifests, files, "b/mixed two.wav", "maya", 12.0, 20.0, minutes=2)
    decide(manifests, files, "a/one.wav", "spanish", minutes=3)
    decide(manifests, files, "b/mixed two.wav", "spanish", 12.0, 20.0, minutes=4)
    stored = reviews.load(str(manifests))
    assert len(stored) == 4  # history kept
    assert reviews.file_decisions(stored) == {"a/one.wav": "spanish"}
    counted = reviews.latest(stored)
    assert counted[["path", "language"]].values.tolist() == [["a/one.wav", "spanish"], ["b/mixed two.wav", "spanish"]]


def test_an_unreadable_file_cannot_be_decided(labelled):
    _, manifests, files = labelled
    with pytest.raises(reviews.ReviewError, match="could not be read"):
        decide(manifests, files, "d/broken.mp3", "maya")


def test_sort_puts_reviewed_files_where_people_decided(labelled, tmp_path):
    archive, _, files = labelled
    decided = {"a/one.wav": "maya", "b/mixed two.wav": "not speech", "c/quiet.wav": "spanish"}
    steps, refused = plan(files, str(archive), str(tmp_path / "dest"), reviewed=decided)
    assert not refused
    folders = {os.path.relpath(s.source, archive): s.folder for s in steps}
    assert folders == {"a/one.wav": "maya", "b/mixed two.wav": UNKNOWN_DIR, "c/quiet.wav": "spanish",
                       "d/broken.mp3": "_error"}


def test_report_counts_agreement_and_names_every_file(labelled):
    archive, manifests, files = labelled
    decide(manifests, files, "a/one.wav", "spanish")  # the model said spanish: agrees
    decide(manifests, files, "c/quiet.wav", "not speech")  # model unknown: agrees
    decide(manifests, files, "b/mixed two.wav", "maya")  # model spanish: disagrees
    decide(manifests, files, "b/mixed two.wav", "maya", 12.0, 20.0)
    text, path = write(str(manifests))
    assert "reviewed by people: 3 files, 1 stretches; the model agrees on 2 of 3 files (67%)" in text
    assert "model spanish      reviewer maya" in text
    page = open(path, encoding="utf-8").read()
    for name in files.path:
        assert f'href="{(archive / name).as_uri()}"' in page
    not_ok = page.split("Files that are not ok (2)")[1].split("</table>")[0]
    assert "c/quiet.wav" in not_ok and "not readable as audio" in not_ok and "a/one.wav" not in not_ok
    strip = page.split("Mixed files (1)")[1].split("Files that are not ok")[0]
    assert strip.count('class="band"') == 2 and "width:60.000%" in strip and "width:40.000%" in strip
    assert 'class="sortable"' in page


def test_reviewed_recordings_become_labelled_training_inputs(labelled):
    _, manifests, files = labelled
    decide(manifests, files, "a/one.wav", "maya", minutes=1)
    decide(manifests, files, "b/mixed two.wav", "spanish", minutes=1)  # a whole-file call...
    decide(manifests, files, "b/mixed two.wav", "spanish", 0.0, 12.0, minutes=2)  # ...the stretches say more
    decide(manifests, files, "b/mixed two.wav", "maya", 12.0, 20.0, minutes=2)
    decide(manifests, files, "c/quiet.wav", "spanish", minutes=1)
    decide(manifests, files, "c/quiet.wav", "not speech", minutes=5)  # changed mind: no training data
    got = {r.file.path: (r.file.label, r.windows, r.file.source)
           for r in reviews.training_inputs(str(manifests), "/archive")}
    assert got == {
        "_reviewed/maya/a/one.wav": ("maya", None, "/archive/a/one.wav"),
        "_reviewed/maya/b/mixed two.wav": ("maya", ((12.0, 20.0),), "/archive/b/mixed two.wav"),
        "_reviewed/spanish/b/mixed two.wav": ("spanish", ((0.0, 12.0),), "/archive/b/mixed two.wav"),
    }


def test_a_reviewed_stretch_gives_clips_from_that_stretch_only(tmp_path):
    archive, _ = review_corpus.build(str(tmp_path), recordings=review_corpus.RECORDINGS[:1])
    source = os.path.join(archive, review_corpus.RECORDINGS[0].path)
    file = InputFile(source, "_reviewed/maya/" + review_corpus.RECORDINGS[0].path, "maya")
    works = plan_spans(file, AudioInfo(17.0, 16000, 1), PrepareConfig(), ((9.0, 17.0), (16.5, 40.0)))
    assert [(w.start_s, w.end_s) for w in works] == [(9.0, 17.0), (16.5, 17.0)]
    clips = cut_spans([works[0]], PrepareConfig())[0].clips
    assert clips and all(9.0 <= start < end <= 17.0 for start, end, _ in clips)


def test_prepare_reviewed_adds_the_decisions_to_the_labelled_data(ray_local, tmp_path):
    archive, manifests = review_corpus.build(str(tmp_path), recordings=review_corpus.RECORDINGS[:2])
    files = manifest.read(os.path.join(manifests, manifest.FILES_NAME)).to_pandas()
    reviews.append(manifests, reviews.Review(review_corpus.MIXED, "maya", 9.0, 17.0), files)
    reviews.append(manifests, reviews.Review("interviews/maya-02.flac", "maya"), files)
    labelled = tmp_path / "labelled" / "spanish"
    labelled.mkdir(parents=True)
    os.link(os.path.join(archive, review_corpus.MIXED), labelled / "s.wav")

    from langsort.cli import app

    out = tmp_path / "prepared"
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "labelled"), "--out", str(out),
                                      "--reviewed", manifests, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "adding 2 reviewed recording(s)" in result.output
    prepared = pd.read_parquet(out / manifest.FILES_NAME).set_index("path")
    assert prepared.label.to_dict() == {"_reviewed/maya/interviews/maya-02.flac": "maya",
                                        f"_reviewed/maya/{review_corpus.MIXED}": "maya", "spanish/s.wav": "spanish"}
    clips = pd.read_parquet(out / manifest.CLIPS_NAME)
    stretch = clips[clips.path == f"_reviewed/maya/{review_corpus.MIXED}"]
    assert len(stretch) and stretch.start_s.min() >= 9.0
    assert json.load(open(out / "prepared.json"))["labels"] == ["maya", "spanish"]


def test_prepare_reviewed_needs_reviews(labelled, tmp_path):
    _, manifests, _ = labelled
    from langsort.cli import app

    (tmp_path / "labelled").mkdir()
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "labelled"), "--out", str(tmp_path / "out"),
                                      "--reviewed", str(manifests)])
    assert result.exit_code == 2 and "no reviews.parquet" in result.output
