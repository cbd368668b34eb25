import os
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import SMALL_LABELS

from langsort import manifest, synth
from langsort.export import export
from langsort.label import Arrivals, label
from langsort.model import read_model_info
from langsort.predict import OnnxPredictor

PROBABILITIES = [manifest.prob_column(label) for label in SMALL_LABELS]


@pytest.fixture(scope="module")
def onnx_model(trained_small, tmp_path_factory):
    return export(trained_small.model_dir, str(tmp_path_factory.mktemp("onnx") / "model.onnx")).path


@pytest.fixture(scope="module")
def archive(tmp_path_factory, speech_cache):
    """An unsorted tree: speech in several formats, folders, and bad files."""
    root = tmp_path_factory.mktemp("archive")
    synth.write(str(root / "a" / "one.wav"), speech_cache("spanish", 14.0, seed=11), target_rate=16000)
    synth.write(str(root / "a" / "two.flac"), speech_cache("maya", 20.0, seed=12), target_rate=44100, channels=2)
    synth.write(str(root / "b" / "c" / "three.mp3"), speech_cache("maya", 9.0, seed=13), target_rate=22050)
    synth.write(str(root / "four.ogg"), speech_cache("spanish", 35.0, seed=14), target_rate=48000)
    synth.write(str(root / "short.wav"), speech_cache("maya", 2.5, seed=15))  # one short answer: still labelled
    synth.write(str(root / "tiny.wav"), speech_cache("maya", 1.0, seed=16))
    synth.write(str(root / "silence.wav"), np.zeros(synth.ESPEAK_RATE * 8, np.float32))
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.txt").write_text("not audio")
    (root / "broken.mp3").write_bytes(os.urandom(3000))
    return root


def test_predictor_labels_clip_rows_and_passes_markers_through(onnx_model):
    info = read_model_info(onnx_model)
    predictor = OnnxPredictor(info)
    grid = np.random.default_rng(0).integers(0, 255, info.grid_shape, dtype=np.uint8).tobytes()
    batch = pd.DataFrame(dict(kind=["clip", "span", "clip"], path=["x", "x", "y"], grid=[grid, None, grid]))
    out = predictor(batch)
    probs = out[PROBABILITIES].to_numpy()
    assert np.isnan(probs[1]).all()
    np.testing.assert_allclose(probs[[0, 2]].sum(axis=1), 1.0, atol=1e-5)
    assert "grid" not in out
    # per-column evidence for the timeline: columns average (in logits) to the clip's decision
    columns = np.frombuffer(out["columns"][0], np.float32).reshape(-1, len(info.labels))
    assert out["columns"][1] is None and len(columns) >= 1
    np.testing.assert_allclose(columns.sum(axis=1), 1.0, atol=1e-5)
    assert np.argmax(np.log(columns).mean(axis=0)) == np.argmax(probs[0])


def test_predictor_gives_the_same_outputs_a_few_grids_at_a_time(onnx_model):
    predictor = OnnxPredictor(read_model_info(onnx_model))
    grids = np.random.default_rng(1).integers(0, 255, (5, *predictor.grid_shape)).astype(np.float32)
    whole = predictor.session.run(None, {predictor.input_name: grids})
    predictor.rows_per_run = 2  # 5 grids: three calls, the last with one
    clips, columns = predictor.predict_columns(grids)
    np.testing.assert_allclose(clips, whole[0], atol=1e-6)
    np.testing.assert_allclose(columns, whole[1], atol=1e-6)
    assert predictor.predict_columns(grids[:0])[0].shape == (0, len(SMALL_LABELS))


def test_a_file_is_complete_only_when_all_its_spans_and_clips_have_arrived():
    arrivals = Arrivals({"long.flac": 2, "short.wav": 1})
    clip = lambda path, start: dict(path=path, kind="clip", start_s=start, end_s=start + 5.0)  # noqa: E731
    span = lambda path, clips: dict(path=path, kind="span", span_clips=clips)  # noqa: E731
    # rows of two files interleaved, a span marker before its clips, the other span's clips first
    order = [clip("long.flac", 700.0), span("long.flac", 2), span("short.wav", 0), clip("long.flac", 10.0),
             span("long.flac", 1), clip("long.flac", 20.0)]
    completed = [arrivals.add(row) for row in order]
    assert completed == [None, None, "short.wav", None, None, "long.flac"]
    clips, spans = arrivals.pop("long.flac")
    assert sorted(c["start_s"] for c in clips) == [10.0, 20.0, 700.0] and len(spans) == 2
    clips, spans = arrivals.pop("short.wav")
    assert clips == [] and len(spans) == 1


def test_label_writes_the_spec_manifests_with_a_row_per_file(ray_local, onnx_model, archive, tmp_path):
    out = tmp_path / "manifests"
    summary = label(str(archive), onnx_model, str(out), progress=False)
    files = pd.read_parquet(out / "files.parquet")
    clips = pd.read_parquet(out / "clips.parquet")
    info = read_model_info(onnx_model)

    assert pq.read_schema(out / "files.parquet").equals(manifest.label_files_schema(info.labels), check_metadata=False)
    assert pq.read_schema(out / "clips.parquet").equals(manifest.label_clips_schema(info.labels), check_metadata=False)
    every = sorted(str(p.relative_to(archive)) for p in archive.rglob("*") if p.is_file())
    assert list(files.path) == every and summary.files == len(every)
    by_path = files.set_index("path")
    for bad in ("empty.wav", "notes.txt", "broken.mp3"):
        assert by_path.status[bad] == "error" and len(by_path.error[bad]) > 5
    # labelling turns speech down to 1.5 s into a clip, and says that is the minimum
    assert by_path.status["tiny.wav"] == "unknown" and "too short" in by_path.error["tiny.wav"]
    assert "1.5 s minimum" in by_path.error["tiny.wav"]
    assert by_path.n_clips["short.wav"] == 1 and by_path.status["short.wav"] in ("ok", "unknown")
    assert by_path.status["silence.wav"] == "unknown" and "no speech" in by_path.error["silence.wav"]
    speech = ["a/one.wav", "a/two.flac", "b/c/three.mp3", "four.ogg"]
    assert (by_path.n_clips[speech] > 0).all() and by_path.status[speech].isin(["ok", "unknown"]).all()
    ok = files[files.status == "ok"]
    assert ok.language.isin(info.labels).all() and ok.confidence.between(0.6, 1.0).all()
    np.testing.assert_allclose(files.loc[files.n_clips > 0, PROBABILITIES].sum(axis=1), 1.0, atol=1e-6)
    assert (files.model_sha256 == info.sha256).all() and (clips.model_sha256 == info.sha256).all()
    assert clips.groupby("path").size().to_dict() == by_path.n_clips[by_path.n_clips > 0].to_dict()
    assert ((clips.end_s - clips.start_s).between(3.0, 15.0) | clips.path.eq("short.wav")).all()
    assert (clips.end_s - clips.start_s)[clips.path == "short.wav"].between(1.5, 3.0).all()
    assert clips.groupby("path").clip_index.apply(lambda s: list(s) == list(range(len(s)))).all()

    segments = pd.read_parquet(out / "segments.parquet")
    assert pq.read_schema(out / "segments.parquet").equals(manifest.label_segments_schema(info.labels),
                                                           check_metadata=False)
    assert set(segments.path) == set(clips.path)
    for path, rows in segments.groupby("path"):
        assert list(rows.segment_index) == list(range(len(rows)))
        assert (rows.start_s.to_numpy()[1:] >= rows.end_s.to_numpy()[:-1]).all() and (rows.end_s > rows.start_s).all()
        spoken = clips[clips.path == path]
        assert rows.start_s.min() >= spoken.start_s.min() - 1e-6 and rows.end_s.max() <= spoken.end_s.max() + 1e-6
    assert segments.language.dropna().isin(info.labels).all()
    has_languages = files.languages.map(len) > 0
    assert has_languages[files.status == "ok"].all() and not has_languages[~files.path.isin(segments.path)].any()
    assert (files.mixed == files.languages.map(len).gt(1)).all()


MANIFEST_NAMES = ("files.parquet", "clips.parquet", "segments.parquet")


def test_rerun_skips_done_files_and_gives_identical_manifests(ray_local, onnx_model, archive, tmp_path):
    out = tmp_path / "manifests"
    label(str(archive), onnx_model, str(out), progress=False)
    first = [(out / name).read_bytes() for name in MANIFEST_NAMES]
    errors = int((pd.read_parquet(out / "files.parquet").status == "error").sum())
    again = label(str(archive), onnx_model, str(out), progress=False)
    # only the unreadable files are looked at again (an error is never reused by content)
    assert again.labelled_now == errors and again.reused == again.files - errors
    assert [(out / name).read_bytes() for name in MANIFEST_NAMES] == first


def test_a_run_killed_after_some_commits_resumes_to_identical_manifests(ray_local, onnx_model, archive, tmp_path):
    """What a kill leaves: parts for some files only, no final manifests. The next run labels
    the rest and its manifests, the timeline included, equal an uninterrupted run's."""
    out = tmp_path / "manifests"
    label(str(archive), onnx_model, str(out), progress=False)
    complete = [(out / name).read_bytes() for name in MANIFEST_NAMES]
    (files_part,) = (out / ".langsort" / "parts").glob("files-*.parquet")
    committed = pq.read_table(files_part)
    pq.write_table(committed.slice(0, committed.num_rows // 2), files_part)  # the later commits never happened
    for name in MANIFEST_NAMES:
        (out / name).unlink()
    kept = committed.slice(0, committed.num_rows // 2).to_pandas()
    resumed = label(str(archive), onnx_model, str(out), progress=False)
    assert resumed.reused == int((kept.status != "error").sum())
    assert resumed.labelled_now == resumed.files - resumed.reused
    assert [(out / name).read_bytes() for name in MANIFEST_NAMES] == complete
    assert len(list((out / ".langsort" / "parts").glob("*.parquet"))) == 3  # compacted: one part per table


def test_a_renamed_file_is_recognised_by_its_content(ray_local, onnx_model, archive, tmp_path):
    tree = shutil.copytree(archive, tmp_path / "tree")
    out = tmp_path / "manifests"
    label(str(tree), onnx_model, str(out), progress=False)
    before = pd.read_parquet(out / "files.parquet").set_index("path")
    os.rename(tree / "four.ogg", tree / "renamed.ogg")
    summary = label(str(tree), onnx_model, str(out), progress=False)
    after = pd.read_parquet(out / "files.parquet").set_index("path")
    assert "four.ogg" not in after.index and "renamed.ogg" in after.index
    assert after.loc["renamed.ogg", "confidence"] == before.loc["four.ogg", "confidence"]
    assert summary.labelled_now == int((before.status == "error").sum())  # unreadable files only


def test_a_ray_worker_killed_mid_job_does_not_fail_it(ray_local, onnx_model, archive, tmp_path):
    """SIGKILL the first labelling worker process seen (the ONNX actor or a decode task):
    Ray restarts it and retries its work, and the manifests equal an undisturbed run's."""
    import threading
    import time

    import psutil

    reference = tmp_path / "reference"
    label(str(archive), onnx_model, str(reference), progress=False)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(
        summary=label(str(archive), onnx_model, str(tmp_path / "m"), progress=False)))
    job.start()
    killed, deadline = None, time.monotonic() + 120
    while killed is None and job.is_alive() and time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            command = " ".join(process.info["cmdline"] or [])
            if command.startswith("ray::") and ("OnnxPredictor" in command or "_SpanClips" in command):
                process.kill()
                killed = command
                break
        time.sleep(0.02)
    job.join(timeout=300)
    assert killed, "no labelling worker process was seen to kill"
    assert "summary" in outcome, "the job failed after a worker was killed"
    for name in ("files.parquet", "clips.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "m" / name), pd.read_parquet(reference / name))
