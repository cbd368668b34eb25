"""Where the speech is, and where clips start and end. Pure: frame energies in, frame
indices out, so every rule here is testable without audio.

Rules (from the method: clips of 3-15 s of spoken language):
- a frame is speech when it stands clearly above the block's noise floor and above an
  absolute floor, so silence and steady hiss never become clips;
- pauses shorter than `bridge_seconds` stay inside a stretch of speech; longer silence
  splits it, and leading/trailing silence is never part of a clip; a fragment too short
  to be a clip joins speech within `merge_seconds` instead of being lost;
- a stretch longer than `max_seconds` is cut at its longest pauses where they leave parts
  within the limits (a change of speaker, and of language, usually falls in one), the rest
  into equal parts; a stretch shorter than `min_seconds` is dropped and counted;
- a clip must also sound like speech to a voice-activity model (music is loud too): that
  check lives in voice.py, its thresholds here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from langsort.errors import ParameterError

Frames = int


@dataclass(frozen=True)
class SegmentParams:
    min_seconds: float = 3.0
    max_seconds: float = 15.0
    bridge_seconds: float = 1.0
    merge_seconds: float = 2.0  # a too-short stretch joins speech this close
    pad_seconds: float = 0.15  # kept around each stretch: word onsets and fading ends
    floor_db: float = -55.0  # absolute: quieter frames are silence whatever the recording
    above_noise_db: float = 10.0  # speech stands this far above the block's quiet frames
    below_peak_db: float = 45.0  # ... and no further than this below the block's loudest
    min_speech_share: float = 0.3  # of the VAD windows in a clip's loudest excerpt; 0 turns the check off
    vad_excerpt_seconds: float = 1.5  # how much of each clip the VAD scores (see voice.py)

    def __post_init__(self):
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ParameterError(
                f"need 0 < min_seconds <= max_seconds, got {self.min_seconds} and {self.max_seconds}"
            )
        if self.bridge_seconds < 0:
            raise ParameterError("bridge_seconds must not be negative")


def speech_mask(energy_db: np.ndarray, params: SegmentParams) -> np.ndarray:
    """Per-frame speech decision for one block of frames (a block is tens of seconds, so
    its 10th percentile is a fair estimate of the local noise floor)."""
    if len(energy_db) == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(
        params.floor_db,
        float(np.percentile(energy_db, 10)) + params.above_noise_db,
        float(energy_db.max()) - params.below_peak_db,
    )
    return energy_db > threshold


def divide(start: Frames, end: Frames, min_frames: Frames, max_frames: Frames,
           pauses: list[tuple[Frames, Frames]] = ()) -> list[tuple[Frames, Frames]]:
    """Cut [start, end) into clips of min..max frames: while more than one clip is left, at
    the middle of the longest of `pauses` (bridged silences inside the stretch) that leaves
    both sides at least min frames and this clip at most max; what is left into equal parts
    when that fits, else max-length clips with the short remainder dropped. Empty when
    shorter than min."""
    clips = []
    while end - start > max_frames and (cut := pause_cut(start, end, min_frames, max_frames, pauses)) is not None:
        clips.append((start, cut))
        start = cut
    return clips + _equal_parts(start, end, min_frames, max_frames)


def pause_cut(start: Frames, end: Frames, min_frames: Frames, max_frames: Frames,
              pauses: list[tuple[Frames, Frames]]) -> Frames | None:
    """The middle of the longest pause that can end a clip begun at `start` (the later one
    of equals), leaving at least min frames after it; None when no pause can."""
    middles = [(b - a, (a + b) // 2) for a, b in pauses
               if min_frames <= (a + b) // 2 - start <= max_frames and end - (a + b) // 2 >= min_frames]
    return max(middles)[1] if middles else None


def _equal_parts(start: Frames, end: Frames, min_frames: Frames, max_frames: Frames) -> list[tuple[Frames, Frames]]:
    length = end - start
    if length < min_frames:
        return []
    parts = math.ceil(length / max_frames)
    if length / parts >= min_frames:
        edges = [start + round(length * i / parts) for i in range(parts + 1)]
        return list(zip(edges[:-1], edges[1:]))
    whole = length // max_frames
    return [(start + i * max_frames, start + (i + 1) * max_frames) for i in range(whole)]


def _runs(mask: np.ndarray) -> np.ndarray:
    """[start, end) of each run of True in a boolean array, shape [n, 2]."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges.reshape(-1, 2)


class ClipCutter:
    """Streaming clip boundaries: push per-frame speech masks block by block, get back the
    clips that are final.

    A stretch shorter than the minimum is not thrown away if speech is near: it absorbs
    speech that follows within `merge_seconds`, or joins the stretch before it. So the
    previous stretch is held back (undivided) until the next one is known. A stretch that
    grows past two full clips is cut at once, so memory does not grow with the recording.
    """

    def __init__(self, params: SegmentParams, frame_rate: float):
        self.min_frames = max(1, round(params.min_seconds * frame_rate))
        self.max_frames = max(self.min_frames, round(params.max_seconds * frame_rate))
        self.bridge_frames = round(params.bridge_seconds * frame_rate)
        self.merge_frames = max(self.bridge_frames, round(params.merge_seconds * frame_rate))
        self.pad_frames = min(round(params.pad_seconds * frame_rate), self.bridge_frames)
        self.longest_dropped: Frames = 0  # longest speech stretch too short to keep
        self._open: list[int] | None = None  # the stretch being grown
        self._previous: list[int] | None = None  # the last closed stretch, not yet divided
        self._pauses: list[tuple[Frames, Frames]] = []  # silences bridged inside those two stretches
        self._seen: Frames = 0
        self._released: Frames = 0  # end of the last clip given out

    @property
    def pending_start(self) -> Frames:
        """First frame that a future clip may still need."""
        for stretch in (self._previous, self._open):
            if stretch:
                return max(self._released, stretch[0] - self.pad_frames)
        return self._seen

    def push(self, mask: np.ndarray) -> list[tuple[Frames, Frames]]:
        clips: list[tuple[Frames, Frames]] = []
        offset, self._seen = self._seen, self._seen + len(mask)
        for start, end in _runs(mask) + offset:
            if self._open and start - self._open[1] <= self._reach(self._open):
                if start > self._open[1]:
                    self._pauses.append((self._open[1], int(start)))
                self._open[1] = int(end)
            else:
                clips += self._close()
                self._open = [int(start), int(end)]
            if self._open[1] - self._open[0] >= 2 * self.max_frames:
                clips += self._release_previous()
                while self._open[1] - self._open[0] >= 2 * self.max_frames:
                    first = max(self._released, self._open[0] - self.pad_frames)
                    cut = pause_cut(first, self._open[1], self.min_frames, self.max_frames, self._pauses)
                    cut = first + self.max_frames if cut is None else cut
                    self._open[0] = self._released = cut
                    self._pauses = [p for p in self._pauses if p[0] >= cut]
                    clips.append((first, cut))
        if self._open and self._seen - self._open[1] > self._reach(self._open):
            clips += self._close()
        return clips

    def finish(self) -> list[tuple[Frames, Frames]]:
        return self._close() + self._release_previous()

    def _reach(self, stretch: list[int]) -> Frames:
        """How far a stretch bridges silence: further while it is too short to be a clip."""
        return self.bridge_frames if stretch[1] - stretch[0] >= self.min_frames else self.merge_frames

    def _close(self) -> list[tuple[Frames, Frames]]:
        if not self._open:
            return []
        stretch, self._open = self._open, None
        if stretch[1] - stretch[0] >= self.min_frames:
            clips = self._release_previous()
            self._previous = stretch
            return clips
        if self._previous and stretch[0] - self._previous[1] <= self.merge_frames:
            self._pauses.append((self._previous[1], stretch[0]))
            self._previous[1] = stretch[1]
        else:
            self.longest_dropped = max(self.longest_dropped, stretch[1] - stretch[0])
        return []

    def _release_previous(self) -> list[tuple[Frames, Frames]]:
        if not self._previous:
            return []
        (start, end), self._previous = self._previous, None
        start = max(self._released, start - self.pad_frames)
        end = min(self._seen, end + self.pad_frames)
        clips = divide(start, end, self.min_frames, self.max_frames, [p for p in self._pauses if p[1] <= end])
        self._pauses = [p for p in self._pauses if p[0] >= end]
        if clips:
            self._released = clips[-1][1]
        return clips
