"""Which language is spoken when: evidence windows inside a recording -> language segments.

Evidence comes from the model at finer grain than a clip: the exported model also gives
class probabilities per time column of the CNN's last feature map (the classifier head
applied to each column, trained on clips that change language: see
langsort.train.backbones.with_columns), so a 15 s clip yields several windows of a couple
of seconds at no extra inference cost. Models without that output give one window per clip.

Smoothing is a Viterbi path (one state per language) over the windows in time order: each
window votes with its duration-weighted log-probabilities, and every change of language
pays a penalty, so a switch needs sustained evidence and one short confident window cannot
split a monolingual recording. A change across a gap between clips pays less, and each
change then moves to the pause nearby that best splits the evidence, so boundaries land in
pauses where there is one. Pure numpy: the label driver runs it per file; bench/timeline.py scores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 0.02  # one window can never be certain: bounds what a single window can cost


@dataclass(frozen=True)
class TimelineParams:
    switch_cost: float = 6.0  # log-likelihood a change of language must win by (nats)
    evidence_per_second: float = 1.0  # weight of one second of a window's log-probabilities
    pause_discount: float = 0.5  # a change across a pause (gap between clips) costs this share
    pause_seconds: float = 0.25  # a gap at least this long between windows is a pause
    merge_gap_seconds: float = 3.0  # same-language stretches closer than this are one segment
    snap_seconds: float = 3.5  # a change of language moves to the pause this close that best splits the evidence
    min_share: float = 0.1  # a second language with at least this share of speech makes a file mixed


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    language: int  # index into the labels
    probabilities: np.ndarray  # duration-weighted mean of the windows' probabilities

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def windows_of_clip(start_s: float, end_s: float, column_probs: np.ndarray,
                    centres: tuple[float, ...] | None = None) -> list[tuple[float, float, np.ndarray]]:
    """A clip's per-column probabilities [columns, labels] as windows across the clip.

    Equal windows: training fits each column to its equal share of the clip (spliced clips,
    langsort.train.data.splice). Models trained before that carry `centres`, where in the
    clip (0..1) each column's evidence came from as their export measured it (a column sees
    far beyond its own width, and edge columns looked inwards); their windows meet halfway
    between centres."""
    edges = np.linspace(start_s, end_s, len(column_probs) + 1)
    if centres is not None and len(centres) == len(column_probs):
        middles = (np.asarray(centres[1:]) + np.asarray(centres[:-1])) / 2
        edges[1:-1] = start_s + middles * (end_s - start_s)
    return [(float(a), float(b), p) for a, b, p in zip(edges[:-1], edges[1:], column_probs)]


def smooth(starts: np.ndarray, ends: np.ndarray, probs: np.ndarray, params: TimelineParams = TimelineParams()) -> np.ndarray:
    """The most likely language per window (Viterbi), given windows sorted by start."""
    n, labels = probs.shape
    emission = (np.log(np.clip(probs, PROBABILITY_FLOOR, 1.0))
                * (params.evidence_per_second * np.maximum(ends - starts, 1e-3))[:, None])
    gaps = np.concatenate([[0.0], starts[1:] - ends[:-1]])
    cost = np.where(gaps >= params.pause_seconds, params.switch_cost * params.pause_discount, params.switch_cost)
    score = emission[0].copy()
    back = np.zeros((n, labels), np.int64)
    stay = np.eye(labels, dtype=bool)
    for i in range(1, n):
        # candidates[to, from]: arrive in `to` from `from`, paying the cost when they differ
        candidates = score[None, :] - np.where(stay, 0.0, cost[i])
        back[i] = np.argmax(candidates, axis=1)
        score = candidates[np.arange(labels), back[i]] + emission[i]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def pauses_in_grid(grid: np.ndarray, start_s: float, end_s: float, min_seconds: float = 0.15) -> np.ndarray:
    """Pauses inside a clip, [k, 2] seconds, read from its spectrogram grid: runs of time
    columns much quieter than the clip's speech (the grid is peak-normalised log-mel, so
    this is relative to the clip, and works under steady noise)."""
    loudness = grid.astype(np.float32).mean(axis=0)
    low, high = np.percentile(loudness, [10, 90])
    quiet = loudness < low + 0.25 * (high - low)
    seconds_per_column = (end_s - start_s) / len(loudness)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = edges.reshape(-1, 2)
    runs = runs[(runs[:, 1] - runs[:, 0]) * seconds_per_column >= min_seconds]
    return (start_s + runs * seconds_per_column).astype(np.float64)


def segments(starts: np.ndarray, ends: np.ndarray, probs: np.ndarray, params: TimelineParams = TimelineParams(),
             pauses: np.ndarray | None = None) -> list[Segment]:
    """Windows -> ordered, non-overlapping segments of one language each; silence between
    windows longer than `merge_gap_seconds` ends a segment. `pauses` ([k, 2] seconds, inside
    clips) are where a change of language most likely happened: a boundary found from the
    windows moves to the longest pause within `snap_seconds`."""
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    starts, ends, probs = starts[order], ends[order], probs[order]
    path = smooth(starts, ends, probs, params)
    out, first = [], 0
    for i in range(1, len(path) + 1):
        if i == len(path) or path[i] != path[first] or starts[i] - ends[i - 1] > params.merge_gap_seconds:
            weights = ends[first:i] - starts[first:i]
            mean = weights @ probs[first:i] / max(weights.sum(), 1e-9)
            out.append(Segment(float(starts[first]), float(max(ends[first:i])), int(path[first]), mean / mean.sum()))
            first = i
    pauses = np.zeros((0, 2)) if pauses is None else pauses
    return _without_overlap(_placed(out, starts, ends, probs, pauses, params))


def _placed(found: list[Segment], starts: np.ndarray, ends: np.ndarray, probs: np.ndarray, pauses: np.ndarray,
            params: TimelineParams) -> list[Segment]:
    """Each change of language between neighbouring segments moved to the pause within
    `snap_seconds` that best splits the windows' evidence: the windows' columns see well
    beyond their own seconds, so the change of evidence runs a window or two off the
    change of speech, and the longest pause nearby is often a sentence's, not the turn's.
    Pauses are those inside clips and the gaps between windows; of equal splits, the
    longer pause wins. A change across silence longer than `merge_gap_seconds` stays in
    that silence."""
    gaps = np.stack([ends[:-1], starts[1:]], axis=1)
    pauses = _merged(np.concatenate([pauses.reshape(-1, 2), gaps[gaps[:, 1] > gaps[:, 0]]]))
    middles, lengths = pauses.mean(axis=1), pauses[:, 1] - pauses[:, 0]
    log_probs = np.log(np.clip(probs, PROBABILITY_FLOOR, 1.0))
    for i in range(1, len(found)):
        before, after = found[i - 1], found[i]
        if before.language == after.language or after.start_s - before.end_s > params.merge_gap_seconds:
            continue
        change = (before.end_s + after.start_s) / 2
        near = np.flatnonzero((np.abs(middles - change) <= params.snap_seconds) & (middles > before.start_s)
                              & (middles < after.end_s))
        if not len(near):
            continue
        # evidence for `before` up to each candidate and for `after` from it, by overlap
        before_part = np.clip(middles[near, None] - starts[None, :], 0, ends - starts)
        after_part = (ends - starts)[None, :] - before_part
        fit = before_part @ log_probs[:, before.language] + after_part @ log_probs[:, after.language]
        best = near[np.argmax(fit + 1e-3 * lengths[near])]
        edges = (float(middles[best]), float(middles[best]))
        if before.end_s <= pauses[best, 0] and pauses[best, 1] <= after.start_s:  # the gap between them
            edges = (before.end_s, after.start_s)
        found[i - 1] = Segment(before.start_s, edges[0], before.language, before.probabilities)
        found[i] = Segment(edges[1], after.end_s, after.language, after.probabilities)
    return found


def _merged(intervals: np.ndarray) -> np.ndarray:
    """Touching or overlapping intervals [k, 2] as one: a pause cut by a clip's edge is one pause."""
    if not len(intervals):
        return intervals
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    out = [list(intervals[0])]
    for start, end in intervals[1:]:
        if start <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return np.array(out, np.float64)


def _without_overlap(found: list[Segment]) -> list[Segment]:
    """Adjacent windows of overlapping clips can overlap by a few frames: meet halfway."""
    for i in range(1, len(found)):
        previous, current = found[i - 1], found[i]
        if current.start_s < previous.end_s:
            middle = (current.start_s + previous.end_s) / 2
            found[i - 1] = Segment(previous.start_s, middle, previous.language, previous.probabilities)
            found[i] = Segment(middle, current.end_s, current.language, current.probabilities)
    return found


def language_shares(found: list[Segment], n_labels: int, threshold: float = 0.0) -> np.ndarray:
    """Share of segment time per language, counting only segments whose own confidence
    reaches `threshold`: an unsure stretch (null language in segments.parquet) holds no
    language, so it cannot make a file mixed, but it is still part of the speech."""
    time, total = np.zeros(n_labels), 0.0
    for segment in found:
        total += segment.duration_s
        if segment.probabilities[segment.language] >= threshold:
            time[segment.language] += segment.duration_s
    return time / total if total > 0 else time


def languages_present(shares: np.ndarray, labels: list[str], min_share: float) -> list[str]:
    """Languages holding at least `min_share` of the speech, largest share first."""
    order = np.argsort(-shares, kind="stable")
    return [labels[i] for i in order if shares[i] > 0 and shares[i] >= min_share]
