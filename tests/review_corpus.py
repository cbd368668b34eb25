"""A labelled archive for the review app's tests, made without a model: real speech
(espeak-ng) in real files, and manifests written directly, as `label` would have written
them for that speech (clip probabilities near the truth, with some doubt)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import soundfile

from langsort import manifest, synth
from langsort.parts import RUN_FILE

LABELS = ["maya", "nahuatl", "spanish"]  # a model of three languages; no recording here is Nahuatl
CLIP_S = 4.0


@dataclass(frozen=True)
class Recording:
    path: str
    parts: tuple[tuple[str, float], ...]  # (language or "music", seconds) in order
    subtype: str = "PCM_16"
    rate: int = 16000


MIXED = "interviews/mixed-01.wav"
RECORDINGS = [
    Recording(MIXED, (("spanish", 9.0), ("maya", 8.0))),
    Recording("interviews/maya-02.flac", (("maya", 12.0),)),
    Recording("phone/call-03.wav", (("spanish", 10.0),), subtype="ULAW", rate=8000),
    Recording("radio/jingle-04.wav", (("music", 6.0),)),
]


def _samples(recording: Recording, rng: np.random.Generator) -> np.ndarray:
    parts = [synth.music(s, rng) if what == "music" else synth.recording(what, s, rng) for what, s in recording.parts]
    return np.concatenate(parts)


def _probabilities(language: str, rng: np.random.Generator, top: float | None = None) -> dict[str, float]:
    top = float(rng.uniform(0.62, 0.97)) if top is None else top
    rest = (1.0 - top) / (len(LABELS) - 1)
    return {manifest.prob_column(label): top if label == language else rest for label in LABELS}


def build(root: str, extra_rows: int = 0, seed: int = 3, recordings: list[Recording] = RECORDINGS) -> tuple[str, str]:
    """ARCHIVE and MANIFESTS under `root` for `recordings`, plus `extra_rows` files.parquet rows
    (no audio) so the list has pages. Returns (archive, manifests)."""
    rng = np.random.default_rng(seed)
    archive, manifests = os.path.join(root, "archive"), os.path.join(root, "manifests")
    files, clips, segments = [], [], []
    for rec in recordings:
        samples = _samples(rec, rng)
        target = os.path.join(archive, rec.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        audio = synth.write(os.path.join(root, "tmp.wav"), samples, synth.ESPEAK_RATE, rec.rate)
        data, rate = soundfile.read(audio, dtype="float32")
        soundfile.write(target, data, rate, subtype=rec.subtype)
        duration = len(data) / rate
        start, clip_rows = 0.0, []
        for language, seconds in rec.parts:
            t = start
            while language != "music" and t + 3.0 <= start + seconds:
                end = min(t + CLIP_S, start + seconds)
                clip_rows.append(dict(path=rec.path, clip_index=len(clip_rows), start_s=t, end_s=end, **_probabilities(language, rng)))
                t = end
            if language != "music":
                segments.append(dict(path=rec.path, segment_index=sum(s["path"] == rec.path for s in segments),
                                     start_s=start, end_s=start + seconds, language=language, confidence=0.8,
                                     **_probabilities(language, rng, top=0.8),
                                     model_sha256="fixture"))
            start += seconds
        for clip in clip_rows:
            best = max(LABELS, key=lambda label: clip[manifest.prob_column(label)])
            clip.update(language=best, confidence=clip[manifest.prob_column(best)], model_sha256="fixture")
        clips += clip_rows
        languages = list(dict.fromkeys(lang for lang, _ in rec.parts if lang != "music"))
        if clip_rows:
            mean = {c: float(np.mean([r[c] for r in clip_rows])) for c in map(manifest.prob_column, LABELS)}
            best = max(LABELS, key=lambda label: mean[manifest.prob_column(label)])
            files.append(dict(path=rec.path, status="ok", language=best, confidence=mean[manifest.prob_column(best)],
                              duration_s=duration, n_clips=len(clip_rows), **mean, model_sha256="fixture",
                              languages=languages, mixed=len(languages) > 1))
        else:
            files.append(dict(path=rec.path, status="unknown", duration_s=duration, n_clips=0, model_sha256="fixture",
                              error="no speech found: the loud parts are music or other sounds, not speech",
                              languages=[], mixed=False))
    for i in range(extra_rows):
        language, confidence = LABELS[i % len(LABELS)], 0.6 + 0.4 * (i % 97) / 97
        files.append(dict(path=f"bulk/tape-{i:05d}.wav", status="ok", language=language, confidence=confidence,
                          duration_s=60.0 + i % 600, n_clips=10, **_probabilities(language, rng, confidence),
                          model_sha256="fixture",
                          languages=[language], mixed=False))
    write_manifests(manifests, archive, files, clips, segments)
    os.remove(os.path.join(root, "tmp.wav"))
    return archive, manifests


def write_manifests(manifests: str, archive: str, files: list[dict], clips: list[dict], segments: list[dict]) -> None:
    manifest.write_atomic(manifest.table(files, manifest.label_files_schema(LABELS)), os.path.join(manifests, manifest.FILES_NAME))
    manifest.write_atomic(manifest.table(clips, manifest.label_clips_schema(LABELS)), os.path.join(manifests, manifest.CLIPS_NAME))
    manifest.write_atomic(manifest.table(segments, manifest.label_segments_schema(LABELS)),
                          os.path.join(manifests, manifest.SEGMENTS_NAME))
    os.makedirs(os.path.join(manifests, os.path.dirname(RUN_FILE)), exist_ok=True)
    with open(os.path.join(manifests, RUN_FILE), "w") as f:
        json.dump(dict(input_root=os.path.abspath(archive), model="fixture.onnx", threshold=0.6), f)
