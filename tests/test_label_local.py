"""A small job is labelled without Ray (its start-up would be most of the time): the same
manifests as on Ray, chosen only when no cluster is named and the job is small, and quiet."""

import os
import subprocess
import sys

import numpy as np
import pytest

from langsort import label as stage
from langsort import synth
from langsort.corpus import discover
from langsort.label import label

MANIFEST_NAMES = ("files.parquet", "files.csv", "clips.parquet", "segments.parquet")


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory, speech_cache):
    """Short speech in several formats, silence, and files that cannot be labelled; one mp3
    with garbage inside, on which libmpg123 prints its resync notes."""
    root = tmp_path_factory.mktemp("small")
    synth.write(str(root / "a" / "one.wav"), speech_cache("spanish", 8.0, seed=21), target_rate=16000)
    synth.write(str(root / "two.mp3"), speech_cache("maya", 6.0, seed=22), target_rate=22050)
    synth.write(str(root / "three.flac"), speech_cache("maya", 2.5, seed=23), target_rate=44100, channels=2)
    synth.write(str(root / "silence.wav"), np.zeros(synth.ESPEAK_RATE * 3, np.float32))
    synth.write(str(root / "resync.mp3"), speech_cache("spanish", 8.0, seed=24), target_rate=16000)
    data = (root / "resync.mp3").read_bytes()
    garbage = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (root / "resync.mp3").write_bytes(data[: len(data) // 2] + garbage + data[len(data) // 2 :])
    (root / "broken.mp3").write_bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not audio")
    return root


def test_local_and_ray_labelling_give_identical_manifests(ray_local, tiny_model, small_archive, tmp_path):
    on_ray = label(str(small_archive), tiny_model, str(tmp_path / "ray"), progress=False, executor="ray")
    local = label(str(small_archive), tiny_model, str(tmp_path / "local"), progress=False, executor="local")
    assert (on_ray.executor, local.executor) == ("ray", "local")
    assert on_ray.files == local.files == 7 and local.counts.get("ok", 0) + local.counts.get("unknown", 0) >= 3
    for name in MANIFEST_NAMES:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    # one resume state: a local run over a Ray run's manifests reuses its work
    again = label(str(small_archive), tiny_model, str(tmp_path / "ray"), progress=False, executor="local")
    assert again.reused == on_ray.files - on_ray.counts["error"]
    assert [(tmp_path / "ray" / name).read_bytes() for name in MANIFEST_NAMES] == \
           [(tmp_path / "local" / name).read_bytes() for name in MANIFEST_NAMES]


def test_auto_is_local_only_without_a_cluster_or_a_running_ray_and_for_a_small_input(small_archive, monkeypatch):
    files, root = discover(str(small_archive)), str(small_archive)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(stage, "_ray_running", lambda: False)
    assert stage._may_be_small(files, root, None)
    assert not stage._may_be_small(files, root, "ray://head:10001")
    assert not stage._may_be_small(files, "s3://archive/tapes", None)
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert not stage._may_be_small(files, root, None)
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setattr(stage, "LOCAL_MAX_BYTES", 1000)
    assert not stage._may_be_small(files, root, None)
    monkeypatch.setattr(stage, "LOCAL_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(stage, "_ray_running", lambda: True)  # paid for already (`langsort run`, a job's driver)
    assert not stage._may_be_small(files, root, None)


def test_auto_hands_more_audio_than_the_local_limit_to_ray(ray_local, tiny_model, small_archive, tmp_path,
                                                           monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(stage, "_ray_running", lambda: False)
    assert label(str(small_archive), tiny_model, str(tmp_path / "a"), progress=False, executor="auto").executor == "local"
    monkeypatch.setattr(stage, "LOCAL_MAX_SECONDS", 10.0)  # the archive holds about 25 s
    summary = label(str(small_archive), tiny_model, str(tmp_path / "b"), progress=False, executor="auto")
    assert summary.executor == "ray" and summary.files == 7
    assert (tmp_path / "a" / "files.parquet").read_bytes() == (tmp_path / "b" / "files.parquet").read_bytes()


def test_the_cli_labels_a_few_files_without_ray_and_prints_only_its_own_lines(tiny_model, small_archive, tmp_path):
    """A fresh process, as a user runs it: Ray is never imported, and nothing but langsort's
    two lines is printed (no decoder notes from the mp3 with garbage inside)."""
    script = ("import sys\nfrom langsort.cli import app\n"
              "try:\n    app(sys.argv[1:])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
              "print('ray imported' if 'ray' in sys.modules else 'no ray')")
    out = tmp_path / "manifests"
    done = subprocess.run([sys.executable, "-c", script, "label", str(small_archive), "--model", tiny_model,
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    labelled, following, ray = done.stdout.strip().splitlines()
    assert labelled.startswith("labelled 7 files (7 now") and following.startswith("next: ") and ray == "no ray"
    assert done.stderr == ""


def test_the_bar_says_what_it_waits_for_until_the_first_file(monkeypatch, capsys):
    from langsort.progress import progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_bar("label", 2, unit="files", waiting="starting workers") as advance:
        first = capsys.readouterr().err
        advance(1)
    rest = capsys.readouterr().err
    last = rest[rest.rindex("label"):]  # the last frame drawn
    assert "label (starting workers)" in first and "0/2 files" in first
    assert "starting workers" not in last and "1/2 files" in last
