"""label against what a newcomer or a hostile archive does: bad files become rows, fast,
and nothing poisons the manifests or the resume state."""

import io
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import soundfile

from langsort import manifest
from langsort.label import label


def tone(path, seconds=4.0, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.sin(np.arange(int(rate * seconds)) / 5)).astype(np.float32), rate)


def test_files_csv_has_the_rows_of_files_parquet_with_lists_joined():
    tbl = pa.table({"path": ["caf\u00e9.wav", "b.wav"], "languages": [["maya", "spanish"], None],
                    "confidence": [0.75, None]})
    data = manifest.csv_bytes(tbl)
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheets read accented names right
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False)
    assert list(back.columns) == ["path", "languages", "confidence"]
    assert back.values.tolist() == [["caf\u00e9.wav", "maya;spanish", "0.75"], ["b.wav", "", ""]]


def test_label_writes_files_csv_beside_files_parquet(ray_local, tiny_model, tmp_path):
    tone(tmp_path / "in" / "a" / "tone.wav")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    out = tmp_path / "manifests"
    label(str(tmp_path / "in"), tiny_model, str(out), progress=False)
    parquet = pd.read_parquet(out / manifest.FILES_NAME)
    csv = pd.read_csv(out / manifest.FILES_CSV_NAME, encoding="utf-8-sig")
    assert list(csv.columns) == list(parquet.columns) and list(csv.path) == ["a/tone.wav", "notes.txt"]
    parquet["languages"] = parquet.languages.map(lambda v: ";".join(v) if len(v) else np.nan)
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)


def test_every_manifest_column_is_documented():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "manifests.md")).read()
    documented = set(re.findall(r"`([a-z_<>0-9]+)`", doc))
    labels = ["<label>"]
    for schema in (manifest.label_files_schema(labels), manifest.label_clips_schema(labels),
                   manifest.label_segments_schema(labels), manifest.REVIEWS_SCHEMA):
        assert set(schema.names) <= documented, set(schema.names) - documented
    for name in (manifest.FILES_NAME, manifest.FILES_CSV_NAME, manifest.CLIPS_NAME, manifest.SEGMENTS_NAME,
                 manifest.REVIEWS_NAME):
        assert f"`{name}`" in doc
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "(docs/manifests.md)" in readme


def run_with_timeout(action, seconds: float):
    """`action()` in a daemon thread: a hang fails the test instead of blocking the suite."""
    import threading

    outcome = {}

    def attempt():
        try:
            outcome["value"] = action()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def liar_flac(path, seconds=6.0, claimed_s=62500.0, rate=16000):
    """A FLAC whose header claims `claimed_s` seconds of audio for `seconds` of it."""
    soundfile.write(path, (0.3 * np.sin(np.arange(int(rate * seconds)) / 5)).astype(np.float32), rate)
    data = bytearray(path.read_bytes())
    fields = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate, channels, bits, then 36 bits of samples
    fields = (fields & ~((1 << 36) - 1)) | int(claimed_s * rate)
    data[18:26] = fields.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_what_is_not_a_regular_file_is_never_opened(tmp_path):
    from langsort import storage
    from langsort.corpus import discover

    os.mkfifo(tmp_path / "x.wav")
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere")
    tone(tmp_path / "ok.wav")
    errors = {f.path: f.error for f in discover(str(tmp_path))}
    assert errors == {"gone.wav": "broken or looping symbolic link", "ok.wav": None,
                      "x.wav": "not a regular file: a FIFO (named pipe)", "zero.wav": "not a regular file: a device"}
    for name in ("x.wav", "zero.wav"):  # and if one became a FIFO after the listing: refused, not read
        with pytest.raises(OSError, match="not a regular file"):
            run_with_timeout(lambda: storage.open_read(str(tmp_path / name)), 10)


def test_label_finishes_on_a_fifo_and_a_link_to_dev_zero(ray_local, tiny_model, tmp_path):
    archive = tmp_path / "in"
    tone(archive / "tone.wav")
    os.mkfifo(archive / "x.wav")
    (archive / "zero.wav").symlink_to("/dev/zero")
    liar_flac(archive / "liar.flac")
    summary = run_with_timeout(lambda: label(str(archive), tiny_model, str(tmp_path / "m"), progress=False), 180)
    files = pd.read_parquet(tmp_path / "m" / "files.parquet").set_index("path")
    assert summary.files == 4
    assert files.status["x.wav"] == "error" and "FIFO" in files.error["x.wav"]
    assert files.status["zero.wav"] == "error" and "device" in files.error["zero.wav"]
    assert files.duration_s["tone.wav"] == pytest.approx(4.0, abs=0.05)
    assert files.duration_s["liar.flac"] <= 6.05  # decoded, not the header's 62,500 s


def test_duration_is_what_was_decoded_not_what_the_header_claims(tiny_model):
    from langsort.audio import AudioInfo
    from langsort.clips import ClipConfig, Probe
    from langsort.corpus import InputFile
    from langsort.label import file_row
    from langsort.model import read_model_info

    probe = Probe(InputFile("liar.flac", "liar.flac"), AudioInfo(62500.0, 16000, 1), None, "sha")
    spans = [dict(error=None, longest_dropped_s=0.0, not_speech_clips=0, decoded_s=6.0)]
    row = file_row(probe, [], spans, read_model_info(tiny_model), ClipConfig(), 0.6)
    assert row["duration_s"] == 6.0


def test_an_error_row_is_never_reused_by_content(tiny_model, tmp_path):
    from langsort.clips import probe
    from langsort.corpus import InputFile
    from langsort.label import reuse
    from langsort.model import read_model_info
    from langsort.parts import PartStore

    tone(tmp_path / "in" / "a.wav")
    probed = probe(InputFile(str(tmp_path / "in" / "a.wav"), "a.wav"), hash_content=True)
    store = PartStore(str(tmp_path / "m"), read_model_info(tiny_model))
    failed = dict(path="a.wav", status="error", error="No such file or directory", n_clips=0,
                  model_sha256=store.model.sha256, content_sha256=probed.sha256)
    store.commit({"files": [failed], "clips": []})
    reused, todo = reuse([probed], store)
    assert reused["files"] == [] and todo == [probed]


def test_a_file_changed_mid_run_does_not_poison_the_resume_state(ray_local, tiny_model, tmp_path, monkeypatch):
    """X rewritten and Y deleted after they were hashed: their rows must not pin the old
    hashes; once both are restored, the next run labels them again."""
    import langsort.label as stage

    archive, out = tmp_path / "in", str(tmp_path / "m")
    tone(archive / "x.wav", 4.0)
    tone(archive / "y.wav", 5.0)
    originals = {name: (archive / name).read_bytes() for name in ("x.wav", "y.wav")}
    real_plan = stage.plan

    def plan_then_change(files, job):
        probes = real_plan(files, job)
        tone(archive / "x.wav", 7.0)
        (archive / "y.wav").unlink()
        return probes

    monkeypatch.setattr(stage, "plan", plan_then_change)
    label(str(archive), tiny_model, out, progress=False)
    monkeypatch.setattr(stage, "plan", real_plan)
    files = pd.read_parquet(tmp_path / "m" / "files.parquet").set_index("path")
    assert (files.status == "error").all() and files.error.str.contains("changed while being labelled").all()

    for name, data in originals.items():
        (archive / name).write_bytes(data)
    again = label(str(archive), tiny_model, out, progress=False)
    files = pd.read_parquet(tmp_path / "m" / "files.parquet").set_index("path")
    assert again.labelled_now == 2 and again.reused == 0
    assert (files.status != "error").all() and files.duration_s.round(1).to_dict() == {"x.wav": 4.0, "y.wav": 5.0}


def test_a_second_label_into_the_same_manifests_stops_and_a_killed_runs_lock_is_taken(ray_local, tiny_model, tmp_path):
    import subprocess
    import sys
    import time

    from typer.testing import CliRunner

    from langsort.cli import app

    archive, out = tmp_path / "in", tmp_path / "m"
    tone(archive / "a.wav")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from langsort.lock import ManifestLock\n"
         f"with ManifestLock({str(out)!r}, '.langsort'):\n print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline() == "held\n"
        result = CliRunner().invoke(app, ["label", str(archive), "--model", tiny_model, "--out", str(out)])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert f"another langsort label (pid {holder.pid} on" in lines[0] and "give another --out" in lines[0]
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, the kernel drops the lock
        holder.wait()
    leftovers = [out / ".files.parquet.0123456789abcdef0123456789abcdef.tmp",
                 out / ".langsort" / "parts" / ".files-1-2.parquet.0123456789abcdef0123456789abcdef.tmp"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a part")
    (out / "my-notes.tmp").write_text("not ours")
    started = time.perf_counter()
    summary = label(str(archive), tiny_model, str(out), progress=False)
    assert summary.files == 1 and time.perf_counter() - started < 120
    assert not any(path.exists() for path in leftovers) and (out / "my-notes.tmp").exists()


def test_the_lock_nests_in_one_process_and_is_released_after(tmp_path):
    import subprocess
    import sys

    from langsort.lock import ManifestLock

    probe = [sys.executable, "-c", "from langsort.lock import ManifestLock\n"
             f"with ManifestLock({str(tmp_path)!r}, '.langsort'): pass"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with ManifestLock(str(tmp_path), ".langsort"):
        with ManifestLock(str(tmp_path), ".langsort"):  # the CLI's lock, then label()'s
            pass
        held = subprocess.run(probe, capture_output=True, text=True, env=env)
        assert held.returncode != 0 and "another langsort label" in held.stderr
    assert subprocess.run(probe, capture_output=True, env=env).returncode == 0
