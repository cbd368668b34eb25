import hashlib
import json
import os

import pandas as pd
import pytest

from langsort import manifest
from langsort.parts import RUN_FILE
from langsort.report import build, render_text, write
from langsort.sort import ERROR_DIR, UNKNOWN_DIR, apply, plan, sort_archive

LABELS = ["maya", "spanish"]


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def labelled(tmp_path):
    """An archive and a files.parquet saying what each file is."""
    archive = tmp_path / "archive"
    rows = [
        ("a/one.wav", "ok", "spanish"), ("a/two.flac", "ok", "maya"), ("b/c/three.mp3", "ok", "maya"),
        ("quiet.wav", "unknown", None), ("broken.mp3", "error", None),
    ]
    for path, _, _ in rows:
        (archive / path).parent.mkdir(parents=True, exist_ok=True)
        (archive / path).write_bytes(os.urandom(2000) + path.encode())
    manifests = tmp_path / "manifests"
    records = [dict(path=p, status=s, language=lang, confidence=0.9 if s == "ok" else None, duration_s=3600.0,
                    n_clips=3, error=None if s == "ok" else "why", p_maya=0.5, p_spanish=0.5, model_sha256="x")
               for p, s, lang in rows]
    manifest.write_atomic(manifest.table(records, manifest.label_files_schema(LABELS)), str(manifests / "files.parquet"))
    (manifests / RUN_FILE).parent.mkdir(parents=True)
    (manifests / RUN_FILE).write_text(json.dumps({"input_root": str(archive)}))
    return archive, manifests, {p: sha(archive / p) for p, _, _ in rows}


def test_copy_puts_every_file_in_its_folder_with_identical_content(labelled, tmp_path):
    archive, manifests, checksums = labelled
    dest = tmp_path / "sorted"
    report = sort_archive(str(manifests), str(dest), "copy")
    expected = {"spanish/a/one.wav": "a/one.wav", "maya/a/two.flac": "a/two.flac",
                "maya/b/c/three.mp3": "b/c/three.mp3", f"{UNKNOWN_DIR}/quiet.wav": "quiet.wav",
                f"{ERROR_DIR}/broken.mp3": "broken.mp3"}
    for target, source in expected.items():
        assert sha(dest / target) == checksums[source]
        assert sha(archive / source) == checksums[source]  # copy leaves the archive alone
    assert report.done == 5 and not report.refused
    again = sort_archive(str(manifests), str(dest), "copy")
    assert again.already == 5 and again.done == 0


def test_move_never_loses_or_duplicates_even_when_rerun(labelled, tmp_path):
    archive, manifests, checksums = labelled
    dest = tmp_path / "sorted"
    sort_archive(str(manifests), str(dest), "move")
    moved = {str(p.relative_to(dest)): sha(p) for p in dest.rglob("*") if p.is_file()}
    assert sorted(moved.values()) == sorted(checksums.values())
    assert not [p for p in archive.rglob("*") if p.is_file()]
    assert sort_archive(str(manifests), str(dest), "move").already == 5


def test_a_move_killed_after_the_copy_is_finished_by_the_rerun(labelled, tmp_path):
    archive, manifests, checksums = labelled
    dest = tmp_path / "sorted"
    steps, _ = plan(pd.read_parquet(manifests / "files.parquet"), str(archive), str(dest))
    step = steps[0]
    os.makedirs(os.path.dirname(step.target))
    with open(step.source, "rb") as src, open(step.target, "wb") as dst:
        dst.write(src.read())  # as if killed between the copy and the removal of the source
    assert apply(step, "move") == "already"
    assert not os.path.exists(step.source) and sha(step.target) == checksums["a/one.wav"]


def test_an_existing_different_target_is_never_overwritten(labelled, tmp_path):
    archive, manifests, _ = labelled
    dest = tmp_path / "sorted"
    (dest / "spanish" / "a").mkdir(parents=True)
    (dest / "spanish" / "a" / "one.wav").write_bytes(b"someone else's file")
    report = sort_archive(str(manifests), str(dest), "move")
    assert (dest / "spanish" / "a" / "one.wav").read_bytes() == b"someone else's file"
    assert (archive / "a" / "one.wav").exists()
    assert [why for _, why in report.refused] == ["target exists with other content: not overwritten"]


def test_paths_that_escape_the_destination_are_refused(tmp_path):
    files = pd.DataFrame(dict(path=["../../etc/passwd", "/abs/x.wav", "ok.wav"], status=["ok", "ok", "ok"],
                              language=["spanish", "spanish", "../x"]))
    steps, refused = plan(files, str(tmp_path / "in"), str(tmp_path / "dest"))
    assert steps == [] and len(refused) == 3


def test_dry_run_touches_nothing(labelled, tmp_path):
    _, manifests, _ = labelled
    lines = []
    report = sort_archive(str(manifests), str(tmp_path / "sorted"), "move", dry_run=True, echo=lines.append)
    assert len(lines) == 5 and not (tmp_path / "sorted").exists() and report.done == 0


def test_report_counts_hours_and_scores_against_the_truth(labelled, tmp_path):
    _, manifests, _ = labelled
    truth = tmp_path / "truth.csv"
    truth.write_text("file,language\na/one.wav,spanish\na/two.flac,spanish\nb/c/three.mp3,maya\n")
    report = build(pd.read_parquet(manifests / "files.parquet"), {"a/one.wav": "spanish", "a/two.flac": "spanish",
                                                                 "b/c/three.mp3": "maya"})
    assert report["status"] == {"ok": 3, "unknown": 1, "error": 1}
    assert {r["language"]: r["hours"] for r in report["per_language"]} == {"maya": 2.0, "spanish": 1.0}
    assert report["truth"]["accuracy"] == pytest.approx(2 / 3)
    assert "accuracy 0.667" in render_text(report)
    text, html_path = write(str(manifests), str(truth))
    page = open(html_path).read()
    assert page.count("data:image/png;base64") == 3 and "Per language" in page
    assert "maya" in text and "against the truth" in text
