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


def manifests_for(tmp_path, archive, rows) -> str:
    """A MANIFESTS folder over `archive` with rows (path, status, language)."""
    manifests = tmp_path / "manifests"
    records = [dict(path=p, status=s, language=lang, n_clips=0, model_sha256="x") for p, s, lang in rows]
    manifest.write_atomic(manifest.table(records, manifest.label_files_schema(LABELS)), str(manifests / "files.parquet"))
    (manifests / RUN_FILE).parent.mkdir(parents=True, exist_ok=True)
    (manifests / RUN_FILE).write_text(json.dumps({"input_root": str(archive)}))
    return str(manifests)


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mode", ["copy", "move", "link"])
def test_a_file_name_as_long_as_names_can_be_is_sorted(tmp_path, mode):
    archive = tmp_path / "archive"
    archive.mkdir()
    name = "x" * 246 + ".wav"  # 250 bytes: any temporary name built on it would be too long
    (archive / name).write_bytes(b"audio")
    manifests = manifests_for(tmp_path, archive, [(name, "ok", "maya")])
    report = sort_archive(manifests, str(tmp_path / "sorted"), mode)
    assert report.done == 1 and not report.refused
    assert (tmp_path / "sorted" / "maya" / name).read_bytes() == b"audio"


@pytest.mark.parametrize("mode", ["copy", "move", "link"])
def test_bad_rows_are_refused_one_by_one_and_the_rest_is_sorted(tmp_path, mode):
    """A dangling link, '', '.', a folder, a NUL, a null language: each refused alone; move
    never renames the input root or a folder."""
    archive = tmp_path / "archive"
    (archive / "folder").mkdir(parents=True)
    (archive / "folder" / "inside.wav").write_bytes(b"inside")
    (archive / "good.wav").write_bytes(b"good")
    (archive / "dangling.wav").symlink_to(archive / "gone.wav")
    rows = [("", "ok", "maya"), (".", "unknown", None), ("folder", "unknown", None), ("dangling.wav", "error", None),
            ("nul\0.wav", "ok", "maya"), ("nolanguage.wav", "ok", None), ("good.wav", "ok", "spanish")]
    manifests = manifests_for(tmp_path, archive, rows)
    report = sort_archive(manifests, str(tmp_path / "sorted"), mode)
    refused = dict(report.refused)
    assert report.done == 1 and (tmp_path / "sorted" / "spanish" / "good.wav").read_bytes() == b"good"
    assert sorted(refused) == sorted(p for p, _, _ in rows if p != "good.wav")
    assert "broken symbolic link" in refused["dangling.wav"] and "not a regular file" in refused["folder"]
    assert "NUL" in refused["nul\0.wav"] and "no language" in refused["nolanguage.wav"]
    assert (archive / "folder" / "inside.wav").read_bytes() == b"inside"
    assert not (tmp_path / "sorted" / "nan").exists()


@pytest.mark.parametrize("mode", ["copy", "move", "link"])
def test_a_link_out_of_the_input_is_never_followed(tmp_path, mode):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0")
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "y.wav").symlink_to(secret)
    (archive / "real.wav").write_bytes(b"real")
    (archive / "inside.wav").symlink_to(archive / "real.wav")
    manifests = manifests_for(tmp_path, archive, [("y.wav", "error", None), ("inside.wav", "ok", "maya")])
    report = sort_archive(manifests, str(tmp_path / "sorted"), mode)
    assert [p for p, _ in report.refused] == ["y.wav"] and "outside the input" in report.refused[0][1]
    assert b"root:x" not in b"".join(tree(tmp_path / "sorted").values())
    assert secret.read_bytes() == b"root:x:0:0" and (archive / "real.wav").read_bytes() == b"real"
    assert (tmp_path / "sorted" / "maya" / "inside.wav").read_bytes() == b"real"


def test_a_non_utf8_name_is_sorted_under_its_own_name(tmp_path):
    from langsort.corpus import discover

    archive = tmp_path / "archive"
    archive.mkdir()
    raw = os.path.join(os.fsencode(archive), b"caf\xe9 \\x41.wav")  # Latin-1 name, and a literal backslash
    with open(raw, "wb") as f:
        f.write(b"latin")
    [found] = discover(str(archive))
    assert found.path == "caf\\xe9 \\x41.wav"  # how label stores it
    manifests = manifests_for(tmp_path, archive, [(found.path, "ok", "maya")])
    report = sort_archive(manifests, str(tmp_path / "sorted"), "move")
    assert report.done == 1 and not report.refused
    with open(os.path.join(os.fsencode(tmp_path / "sorted" / "maya"), b"caf\xe9 \\x41.wav"), "rb") as f:
        assert f.read() == b"latin"


@pytest.mark.parametrize("inside", [".", "sorted"])
def test_a_destination_inside_the_input_is_refused(labelled, inside):
    from langsort.sort import SortError

    archive, manifests, _ = labelled
    before = tree(archive)
    with pytest.raises(SortError, match="inside the labelled folder"):
        sort_archive(str(manifests), str(archive / inside), "copy")
    assert tree(archive) == before


def test_files_that_are_not_audio_keep_their_row_but_are_never_moved(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "inventory-notes.txt").write_text("tape 12: interview")
    (archive / "notes.mp3").write_text("text renamed .mp3")  # an audio name that does not decode
    manifests = manifests_for(tmp_path, archive, [("inventory-notes.txt", "error", None),
                                                  ("notes.mp3", "error", None)])
    report = sort_archive(manifests, str(tmp_path / "sorted"), "move")
    assert report.not_audio == ["inventory-notes.txt"] and report.done == 1 and not report.refused
    assert (archive / "inventory-notes.txt").read_text() == "tape 12: interview"
    assert tree(tmp_path / "sorted") == {f"{ERROR_DIR}/notes.mp3": b"text renamed .mp3"}


def test_partial_copies_left_by_a_killed_sort_are_removed(labelled, tmp_path):
    archive, manifests, _ = labelled
    dest = tmp_path / "sorted"
    (dest / "maya" / "a").mkdir(parents=True)
    partial = dest / "maya" / "a" / ".langsort-0123456789abcdef0123456789abcdef.part"
    partial.write_bytes(b"half a copy")
    (dest / "maya" / "keep.part").write_bytes(b"someone's file")
    assert sort_archive(str(manifests), str(dest), "copy").done == 5
    assert not partial.exists() and (dest / "maya" / "keep.part").exists()
