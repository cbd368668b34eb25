"""The bytes the review pages play and show: a recording (safely located, transcoded when a
browser cannot play it), one byte range of it, and its spectrogram picture.

Only paths listed in files.parquet are ever opened, and only inside the input root: a path
with `..`, an absolute path, or a symbolic link that leads out of the root is refused.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import uuid
from dataclasses import dataclass

import numpy as np
import soundfile
from PIL import Image

from langsort import audio, storage
from langsort.features import LogMelStream, SpectrogramParams

# (container, encoding) pairs that Chromium and Firefox both play from an <audio> element
PLAYABLE = {
    ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_U8"), ("WAV", "FLOAT"),
    ("FLAC", "PCM_16"), ("FLAC", "PCM_24"), ("FLAC", "PCM_S8"),
    ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III"),
}
MEDIA_TYPES = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg", "MP3": "audio/mpeg"}
PLAYABLE_RATES = (8000, 48000)  # transcoding keeps the rate inside this range
SPECTROGRAM_COLUMNS = 1200  # picture width: longer recordings are averaged down to it


class BadPath(ValueError):
    """A path no recording can have: absolute, with `..`, or with odd characters."""


class NotARecording(LookupError):
    """The path is not in files.parquet."""


class Escapes(PermissionError):
    """The path is in the manifests but leads outside the input root (a symbolic link)."""


def locate(input_root: str, path: str, known: frozenset[str]) -> str:
    """Where the recording `path` (relative, as in files.parquet) is read from."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or "\x00" in path or re.match(r"^[A-Za-z]:", path) \
            or any(p in ("", ".", "..") for p in parts):
        raise BadPath(f"not a recording path: {path!r}")
    if path not in known:
        raise NotARecording(path)
    if storage.is_remote(input_root):
        return storage.join(input_root, path)
    root = os.path.realpath(input_root)
    real = os.path.realpath(os.path.join(root, *parts))
    if not real.startswith(root + os.sep):
        raise Escapes(f"{path} leads outside the input folder")
    return real


@dataclass(frozen=True)
class Playable:
    """What to send for a recording: a file (local path or URI) and its media type."""

    source: str
    media_type: str


def playable(source: str, cache_dir: str) -> Playable:
    """The recording itself when browsers play its format, else a 16-bit WAV transcoded once
    into `cache_dir` (u-law and a-law telephone audio, ADPCM, AIFF, odd rates...)."""
    try:
        with storage.open_read(source) as handle:
            info = soundfile.info(handle)
    except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError) as exc:
        raise audio.AudioError(f"not readable as audio: {exc}") from None
    rate_ok = PLAYABLE_RATES[0] <= info.samplerate <= 96000
    if (info.format, info.subtype) in PLAYABLE and rate_ok and info.channels <= 2:
        return Playable(source, MEDIA_TYPES[info.format])
    target = os.path.join(cache_dir, hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest() + ".wav")
    if not os.path.exists(target):
        transcode(source, target, min(max(info.samplerate, PLAYABLE_RATES[0]), PLAYABLE_RATES[1]))
    return Playable(target, "audio/wav")


def transcode(source: str, target: str, sample_rate: int) -> None:
    """Mono 16-bit WAV, decoded block by block; appears under `target` only when complete."""
    tmp = f"{target}.{uuid.uuid4().hex}.part"
    try:
        with soundfile.SoundFile(tmp, "w", sample_rate, 1, subtype="PCM_16", format="WAV") as out:
            for block in audio.read_blocks(source, sample_rate):
                out.write(block)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class RangeNotSatisfiable(ValueError):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) bytes one HTTP Range header asks for; None for the whole file (no
    header, another unit, or several ranges, which a server may answer with everything)."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise RangeNotSatisfiable(f"bytes {header} of {size}")
    return start, end


def read_range(source: str, start: int, end: int, chunk: int = 256 * 1024):
    """The bytes [start, end) of a file, in chunks (for a streaming response)."""
    with storage.open_read(source) as f:
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            data = f.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


def spectrogram_png(source: str, params: SpectrogramParams = SpectrogramParams(),
                    columns: int = SPECTROGRAM_COLUMNS) -> bytes:
    """The recording's log-mel spectrogram as a PNG `columns` wide (frames averaged in
    groups, so an hour needs no more memory than a minute), low frequencies at the bottom."""
    import matplotlib

    duration = audio.probe(source).duration_s
    group = max(1, math.ceil(duration * params.frame_rate / columns))
    stream, pooled, pending = LogMelStream(params), [], np.zeros((0, params.n_mels), np.float32)
    for block in audio.read_blocks(source, params.sample_rate):
        pending = np.concatenate([pending, stream.push(block)[0]])
        whole = len(pending) // group * group
        if whole:
            pooled.append(pending[:whole].reshape(-1, group, params.n_mels).mean(axis=1))
            pending = pending[whole:]
    if len(pending):
        pooled.append(pending.mean(axis=0, keepdims=True))
    mel = np.concatenate(pooled) if pooled else np.full((1, params.n_mels), -100.0, np.float32)
    relative = np.clip(mel - mel.max(), -params.top_db, 0.0) / params.top_db + 1.0
    coloured = matplotlib.colormaps["magma"](relative.T[::-1], bytes=True)[..., :3]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(coloured)).save(buffer, format="PNG")
    return buffer.getvalue()
