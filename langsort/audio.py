"""Decode any supported audio file into mono float32 at one analysis rate, block by block.

Archives hold hours-long recordings in every format and rate, so nothing here reads a file
whole: `read_blocks` streams fixed-size blocks through a streaming resampler, and memory
stays flat however long the recording is.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile
import soxr

from langsort import storage
from langsort.errors import LangsortError


Seconds = float

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff"})


class AudioError(LangsortError):
    """A file that cannot be decoded; the message is one line a person can act on."""


@dataclass(frozen=True)
class AudioInfo:
    duration_s: Seconds
    sample_rate: int
    channels: int


def is_audio_name(path: str) -> bool:
    """True for file names with an audio extension (the decoder has the final word)."""
    return os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS


@contextlib.contextmanager
def _open(source: str) -> Iterator[soundfile.SoundFile]:
    try:
        handle = storage.open_read(source)
    except OSError as exc:
        raise AudioError(f"cannot open: {exc.strerror or _one_line(exc)}") from None
    with handle:
        with _decoder(handle) as f:
            yield f


def _decoder(handle) -> soundfile.SoundFile:
    try:
        return soundfile.SoundFile(handle)
    except soundfile.LibsndfileError as exc:
        raise AudioError(f"not readable as audio: {_libsndfile_reason(exc)}") from None
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"cannot open: {_one_line(exc)}") from None


def probe(source) -> AudioInfo:
    """Duration, rate and channels from the header, without decoding the samples."""
    with _open(source) as f:
        if f.samplerate <= 0 or f.channels <= 0:
            raise AudioError("header declares no samples or channels")
        return AudioInfo(duration_s=f.frames / f.samplerate, sample_rate=f.samplerate, channels=f.channels)


def read_blocks(
    source,
    sample_rate: int,
    start_s: Seconds = 0.0,
    end_s: Seconds | None = None,
    block_s: Seconds = 10.0,
    speed: float = 1.0,
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks at `sample_rate` covering [start_s, end_s) of the file.

    Channels are averaged; NaN/Inf samples (seen in broken float WAVs) become silence;
    `speed` != 1 plays the audio faster or slower (tempo and pitch together), the
    speed perturbation used to augment training data.
    """
    with _open(source) as f:
        rate = f.samplerate
        first = int(round(start_s * rate))
        last = f.frames if end_s is None else min(f.frames, int(round(end_s * rate)))
        if first > 0:
            try:
                f.seek(first)
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"cannot seek to {start_s:.1f} s: {_one_line(exc)}") from None
        resampler = soxr.ResampleStream(rate, sample_rate / speed, 1, dtype="float32")
        remaining = last - first
        block_frames = max(1, int(block_s * rate))
        while remaining > 0:
            try:
                data = f.read(min(block_frames, remaining), dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"decoding failed: {_one_line(exc)}") from None
            if len(data) == 0:
                break
            remaining -= len(data)
            channels = data.shape[1]
            mono = data @ np.full(channels, 1.0 / channels, np.float32) if channels > 1 else data[:, 0]
            if not np.isfinite(mono).all():  # one cheap pass; the repair copies
                mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
            out = resampler.resample_chunk(np.ascontiguousarray(mono), last=remaining <= 0)
            if len(out):
                yield out
        if remaining > 0:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield tail


def spans(duration_s: Seconds, span_s: Seconds) -> list[tuple[Seconds, Seconds]]:
    """Cut a recording into equal work spans no longer than `span_s`, so one long
    recording becomes several tasks instead of one giant one."""
    n = max(1, math.ceil(duration_s / span_s))
    edges = [duration_s * i / n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _libsndfile_reason(exc: "soundfile.LibsndfileError") -> str:
    """libsndfile's reason without the path it repeats; its "does not exist or is not a
    regular file" also means "no decoder recognised the bytes"."""
    reason = " ".join(str(getattr(exc, "error_string", "") or exc).split())
    if "not a regular file" in reason or "pipe" in reason:
        return "unrecognised or corrupt audio data"
    return reason.rstrip(".") or "unknown decoder error"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
