"""Log-mel spectrograms and the compact "grid" that the CNN sees as an image.

The grid is the clip's log-mel matrix (mel bands x a fixed number of time columns, the
clip stretched to fit as in the published method), normalised to the clip's own peak and
stored as uint8: 128 x 224 bytes = 28 KB a clip instead of 600 KB for a float image. The
model itself resizes the grid to its square RGB input, so training and labelling cannot
disagree on how an image is made.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft
from PIL import Image

from langsort.errors import ParameterError


@dataclass(frozen=True)
class SpectrogramParams:
    """Everything needed to turn audio into the model's input; stored with every model."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 8000.0
    top_db: float = 80.0
    frames: int = 224  # time columns of the grid

    def __post_init__(self):
        if min(self.sample_rate, self.n_fft, self.hop_length) <= 0:
            raise ParameterError("sample_rate, n_fft and hop_length must be positive")
        if not 0 < self.win_length <= self.n_fft:
            raise ParameterError(f"win_length must be in 1..n_fft, got {self.win_length}")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError("need 0 < fmin < fmax <= sample_rate / 2")
        if self.frames < 8 or self.n_mels < 8:
            raise ParameterError("frames and n_mels must be at least 8")

    @property
    def frame_rate(self) -> float:
        """Spectrogram frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.n_mels, self.frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpectrogramParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@functools.lru_cache(maxsize=8)
def _mel_basis(params: SpectrogramParams) -> np.ndarray:
    """librosa.filters.mel's filterbank (Slaney mel scale, Slaney area norm) as [bins, mels].

    Written out rather than imported: `librosa.filters` pulls in scipy.signal and numba,
    1.1 s of imports in every Ray worker that makes spectrograms, more CPU than a worker
    spends on the spectrograms of ten minutes of audio. tests/test_features.py holds it
    equal to librosa's.
    """
    edges = _mel_to_hz(np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(params.fmax), params.n_mels + 2))
    bins = np.fft.rfftfreq(params.n_fft, 1.0 / params.sample_rate)
    rising = (bins - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - bins) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.ascontiguousarray(weights.T.astype(np.float32))


# Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above
_LINEAR_HZ_PER_MEL, _LOG_START_HZ, _LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0


def _hz_to_mel(hz):
    hz = np.asarray(hz, np.float64)
    log_part = _LOG_START_HZ / _LINEAR_HZ_PER_MEL + np.log(np.maximum(hz, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(hz < _LOG_START_HZ, hz / _LINEAR_HZ_PER_MEL, log_part)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    log_start_mel = _LOG_START_HZ / _LINEAR_HZ_PER_MEL
    log_part = _LOG_START_HZ * np.exp(_LOG_STEP * (np.maximum(mel, log_start_mel) - log_start_mel))
    return np.where(mel < log_start_mel, mel * _LINEAR_HZ_PER_MEL, log_part)


@functools.lru_cache(maxsize=8)
def _window(params: SpectrogramParams) -> np.ndarray:
    window = np.hanning(params.win_length + 1)[:-1].astype(np.float32)  # periodic Hann
    pad = params.n_fft - params.win_length
    return np.pad(window, (pad // 2, pad - pad // 2))


class LogMelStream:
    """Streaming log-mel: push sample blocks of any length, get the frames they complete.

    Frame i starts at sample i * hop_length of the stream, so blocks can be cut anywhere
    and the result equals one pass over the concatenated audio.
    """

    def __init__(self, params: SpectrogramParams):
        self.params = params
        self._pending = np.zeros(0, dtype=np.float32)
        self._window = _window(params)
        self._basis = _mel_basis(params)
        self._window_power = float(np.mean(self._window**2))
        self._parseval = np.full(params.n_fft // 2 + 1, 2.0, np.float32)
        self._parseval[[0, -1]] = 1.0

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (mel_db [frames, n_mels] float32, energy_db [frames] float32)."""
        p = self.params
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = 0 if len(buf) < p.n_fft else (len(buf) - p.n_fft) // p.hop_length + 1
        self._pending = buf[n * p.hop_length :]
        if n == 0:
            return np.zeros((0, p.n_mels), np.float32), np.zeros(0, np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(buf, p.n_fft)[:: p.hop_length][:n] * self._window
        squares = scipy.fft.rfft(frames, axis=1).view(np.float32)  # re, im interleaved
        squares *= squares
        power = squares[:, 0::2] + squares[:, 1::2]
        mel_db = _decibels(power @ self._basis)
        # frame energy by Parseval (the rfft holds the inner bins once, the full FFT twice)
        energy_db = _decibels(power @ self._parseval / np.float32(p.n_fft**2 * self._window_power))
        return mel_db, energy_db


def _decibels(power: np.ndarray) -> np.ndarray:
    """10 log10(power) in place, floored at -100 dB: via the natural log, which numpy
    vectorises for float32 and log10 it does not (4x faster here, a fifth of the spectrogram)."""
    out = np.maximum(power, np.float32(1e-10))
    np.log(out, out=out)
    out *= np.float32(10.0 / np.log(10.0))
    return out


def clip_grid(mel_db: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """A clip's log-mel frames [T, n_mels] -> uint8 grid [n_mels, frames], peak-normalised.

    Peak normalisation makes the image independent of recording level; the time axis is
    resampled with PIL's antialiasing filter so long clips are averaged, not aliased.
    """
    if len(mel_db) == 0:
        raise ValueError("empty clip")
    relative = np.clip(mel_db - mel_db.max(), -params.top_db, 0.0) / params.top_db + 1.0  # [0, 1]
    image = Image.fromarray(np.ascontiguousarray(relative.T, dtype=np.float32), mode="F")
    resized = np.asarray(image.resize((params.frames, params.n_mels), Image.Resampling.BILINEAR))
    return np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)


def grid_to_png(grid: np.ndarray, path: str) -> None:
    """Write a grid as a picture a person can read: low frequencies at the bottom."""
    import matplotlib

    colored = matplotlib.colormaps["magma"](grid[::-1] / 255.0, bytes=True)
    Image.fromarray(colored[..., :3]).save(path)
