import os
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_LABELS

from langsort import manifest, synth
from langsort.clips import SpanWork, cut_spans, probe
from langsort.corpus import InputFile, discover
from langsort.prepare import PrepareConfig, assemble, prepare
from langsort.segment import SegmentParams

RATE = synth.ESPEAK_RATE


def prepare_file(path: str, config=PrepareConfig()):
    file = InputFile(source=path, path=os.path.basename(path))
    probed = probe(file)
    info, error = probed.info, probed.error
    from langsort.prepare import plan_spans

    results = [cut_spans([w], config)[0] for w in plan_spans(file, info, config)] if info else []
    return assemble(file, info, error, results, config)


@pytest.fixture(scope="module")
def hundred_seconds(tmp_path_factory, speech_cache):
    """100 s: stretches of speech separated by 3 s silences, speech times known."""
    pieces, speech_spans, t = [], [], 0.0
    for i, seconds in enumerate([4.0, 22.0, 9.0, 27.0, 6.0, 12.0]):
        gap = np.zeros(int(3.0 * RATE), np.float32)
        speech = speech_cache("spanish" if i % 2 else "maya", seconds, seed=i)
        pieces += [gap, speech]
        speech_spans.append((t + 3.0, t + 3.0 + seconds))
        t += 3.0 + seconds
    samples = np.concatenate(pieces + [np.zeros(int((100 - t) * RATE), np.float32)])
    path = synth.write(str(tmp_path_factory.mktemp("long") / "hundred.flac"), samples, RATE, 44100, 2)
    return path, samples, speech_spans


def test_a_100_s_recording_gives_clips_of_3_to_15_s_covering_its_speech(hundred_seconds):
    path, samples, speech_spans = hundred_seconds
    row, clips = prepare_file(path)
    assert row["status"] == "ok" and row["n_clips"] == len(clips) > 0
    assert abs(row["duration_s"] - 100.0) < 0.05
    assert all(3.0 <= c["end_s"] - c["start_s"] <= 15.0 for c in clips)
    assert [c["clip_index"] for c in clips] == list(range(len(clips)))
    # every loud 10 ms frame of speech lies inside a clip
    frame = RATE // 100
    energy = np.array([np.mean(samples[i : i + frame] ** 2) for i in range(0, len(samples) - frame, frame)])
    loud = np.flatnonzero(10 * np.log10(energy + 1e-12) > -30) / 100.0
    inside = [any(c["start_s"] - 0.05 <= t <= c["end_s"] + 0.05 for c in clips) for t in loud]
    assert np.mean(inside) > 0.97
    # and no clip reaches into the middle of the 3 s silences between the stretches
    for (_, end), (start, _) in zip(speech_spans, speech_spans[1:]):
        middle = (end + start) / 2
        assert not any(c["start_s"] < middle < c["end_s"] for c in clips)


def test_spans_of_one_long_recording_join_into_one_clip_sequence(hundred_seconds):
    path = hundred_seconds[0]
    _, whole = prepare_file(path)
    _, spanned = prepare_file(path, PrepareConfig(span_seconds=30.0))
    assert [c["clip_index"] for c in spanned] == list(range(len(spanned)))
    starts = [c["start_s"] for c in spanned]
    assert starts == sorted(starts)
    assert abs(len(spanned) - len(whole)) <= 3  # span edges may cut a stretch of speech


def test_a_2_s_recording_gives_no_clip_and_says_why(tmp_path, speech_cache):
    path = synth.write(str(tmp_path / "short.wav"), speech_cache("maya", 2.0))
    row, clips = prepare_file(path)
    assert (row["status"], row["n_clips"], clips) == ("unknown", 0, [])
    assert "too short" in row["error"] and "3 s minimum" in row["error"]


@pytest.mark.parametrize("kind", ["silence", "hiss"])
def test_silence_and_hiss_give_no_clip(tmp_path, kind):
    rng = np.random.default_rng(0)
    samples = np.zeros(RATE * 20, np.float32) if kind == "silence" else 0.05 * rng.standard_normal(RATE * 20)
    row, clips = prepare_file(synth.write(str(tmp_path / f"{kind}.wav"), samples.astype(np.float32)))
    assert (row["status"], clips) == ("unknown", [])
    assert "no speech" in row["error"]


def test_music_without_speech_gives_no_clip_and_says_it_is_not_speech(tmp_path):
    samples = synth.music(20.0, np.random.default_rng(3))
    path = synth.write(str(tmp_path / "jingle.ogg"), samples)
    assert cut_spans([SpanWork(InputFile(path, "jingle.ogg"), 0.0, 20.0)], PrepareConfig(
        segment=SegmentParams(min_speech_share=0)))[0].clips  # loud enough for the energy rule alone
    row, clips = prepare_file(path)
    assert (row["status"], clips) == ("unknown", [])
    assert "music or other sounds, not speech" in row["error"]


def test_speech_followed_by_music_keeps_only_the_speech(tmp_path, speech_cache):
    rng = np.random.default_rng(4)
    samples = np.concatenate([speech_cache("spanish", 20.0), np.zeros(RATE * 3, np.float32),
                              synth.music(20.0, rng)])
    row, clips = prepare_file(synth.write(str(tmp_path / "radio.wav"), samples))
    assert row["status"] == "ok" and clips
    assert all(c["end_s"] <= 21.0 for c in clips), [(c["start_s"], c["end_s"]) for c in clips]


def test_spans_checked_together_give_what_each_gives_alone(tmp_path, speech_cache):
    rng = np.random.default_rng(5)
    pieces = {"a.wav": speech_cache("spanish", 20.0), "b.flac": synth.music(12.0, rng),
              "c.wav": np.concatenate([speech_cache("maya", 12.0), synth.music(8.0, rng)])}
    works = [SpanWork(InputFile(synth.write(str(tmp_path / name), samples), name), 0.0, len(samples) / RATE)
             for name, samples in pieces.items()]
    alone = [cut_spans([work], PrepareConfig())[0] for work in works]
    together = cut_spans(works, PrepareConfig())
    assert [(r.clips, r.not_speech_clips) for r in together] == [(r.clips, r.not_speech_clips) for r in alone]
    assert alone[0].clips and not alone[1].clips and alone[1].not_speech_clips and alone[2].not_speech_clips


def test_perturbed_copies_differ_from_the_original(tmp_path, speech_cache):
    path = synth.write(str(tmp_path / "spanish" / "a.wav"), speech_cache("spanish", 12.0))
    file = InputFile(source=path, path="spanish/a.wav", label="spanish")
    config = PrepareConfig(augment=2)
    plain, copy = (cut_spans([SpanWork(file, 0.0, 12.0, c)], config)[0] for c in (0, 1))
    assert plain.clips and copy.clips
    assert plain.clips[0][2] != copy.clips[0][2]
    again = cut_spans([SpanWork(file, 0.0, 12.0, 1)], config)[0]
    assert again.clips[0][2] == copy.clips[0][2]  # seeded: the same copy every run


def test_prepare_on_ray_gives_a_row_per_file_and_errors_for_bad_ones(ray_local, small_corpus, tmp_path):
    small_corpus = shutil.copytree(small_corpus, tmp_path / "corpus")
    (small_corpus / "maya" / "empty.wav").write_bytes(b"")
    (small_corpus / "maya" / "corrupt.mp3").write_bytes(os.urandom(4000))
    (small_corpus / "spanish" / "notes.txt").write_text("not audio")
    out = tmp_path / "prepared"
    summary = prepare(str(small_corpus), str(out), progress=False)

    files = pd.read_parquet(out / manifest.FILES_NAME)
    clips = pd.read_parquet(out / manifest.CLIPS_NAME)
    every_file = sorted(f.path for f in discover(str(small_corpus)))
    assert sorted(files.path) == every_file
    bad = files.set_index("path").loc[["maya/empty.wav", "maya/corrupt.mp3", "spanish/notes.txt"]]
    assert (bad.status == "error").all() and bad.error.str.len().gt(5).all()
    good = files[~files.path.isin(bad.index)]
    assert (good.status == "ok").all() and len(good) == 6 * len(SMALL_LABELS)
    assert set(good.path.str.rsplit(".", n=1).str[1]) == {"wav", "flac", "mp3", "ogg"}
    assert set(clips.label) == set(SMALL_LABELS) and (clips.augment == 0).all()
    assert clips.groupby("path").size().to_dict() == good.set_index("path").n_clips.to_dict()
    grid_bytes = 128 * 224
    assert clips.grid.map(len).eq(grid_bytes).all()
    assert summary.labels == SMALL_LABELS and summary.errors == 3
