"""From clip probabilities to one decision per file.

A file's probability for each language is the duration-weighted mean of its clips'
probabilities. The mean (not the product of probabilities, i.e. a sum of log-probabilities)
keeps one confidently wrong clip — music, a quote in another language, a burst of noise —
from outvoting the rest of a recording; weighting by duration makes a 3 s fragment count
less than a full 15 s clip. The label is the arg-max; below `threshold` the file is unknown.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.6  # below this a file's confidence makes it unknown (label, run, demo)


def file_probabilities(clip_probs: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """[clips, labels] and [clips] -> [labels], summing to 1."""
    weights = np.asarray(durations, np.float64)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1.0 / len(weights))
    probs = weights @ np.asarray(clip_probs, np.float64)
    return probs / probs.sum()


def decide(probs: np.ndarray, labels: list[str], threshold: float = 0.0) -> tuple[str | None, float]:
    """(label, confidence); label is None when the confidence is below `threshold`."""
    best = int(np.argmax(probs))
    confidence = float(probs[best])
    return (labels[best] if confidence >= threshold else None), confidence


def group_files(paths: np.ndarray, clip_probs: np.ndarray, durations: np.ndarray) -> dict[str, np.ndarray]:
    """path -> aggregated probabilities, for every path among the clips."""
    out = {}
    paths = np.asarray(paths)
    for path in np.unique(paths):
        rows = paths == path
        out[str(path)] = file_probabilities(clip_probs[rows], durations[rows])
    return out
