"""Perturbed copies of training recordings, so the classifier learns the language and not
the voice, the microphone or the channel.

A `Perturbation` is drawn once per (recording, copy) from a seed and then applied to every
block of that recording, so a copy is one consistent "other recording": another speaking
rate and pitch (speed perturbation, done by the resampler), an echo, background noise
at one SNR, a telephone-like band limit, another level. The noise level follows the
loudest block so far (the speech), not the first block: a copy whose opening is quiet
still gets its drawn SNR once the speech starts. SpecAugment-style masking happens later,
on the spectrogram grids during training (see langsort.train.data).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

NOISE_CHANCE = 0.7
# Archives hold speech under noise nearly as loud as it. A model that never heard noise
# that loud in training took the noise itself for one language (bench/accuracy.py
# --scenario little), so copies reach 3 dB.
SNR_RANGE_DB = (3.0, 35.0)
# Rooms and studios repeat what is said. A model that never heard an echo took one for a
# language: Maya in espeak-ng's f4 voice, which has a faint 130 ms echo, came out Spanish,
# and the same voice without its echo did not (bench/timeline.py, speech time by voice).
ECHO_CHANCE = 0.5
ECHO_DELAY_S = (0.03, 0.25)
ECHO_GAIN_DB = (-30.0, -10.0)


@dataclass
class Echo:
    """Everything said comes back `delay_s` later at `gain`, and again, decaying (a feedback
    comb: a hall's slapback, a monitor in the studio). The last `delay_s` of output carry
    over to the next block, so blocks can be cut anywhere."""

    delay_s: float
    gain: float
    _tail: np.ndarray | None = field(repr=False, default=None)

    def apply(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        delay = max(1, round(self.delay_s * sample_rate))
        tail = self._tail if self._tail is not None else np.zeros(delay, np.float32)
        out = np.concatenate([tail, block.astype(np.float32, copy=False)])  # out[delay + n] is block[n]'s output
        for start in range(delay, len(out), delay):  # each stretch of `delay` samples only needs finished ones
            end = min(start + delay, len(out))
            out[start:end] += np.float32(self.gain) * out[start - delay : end - delay]
        self._tail = out[-delay:].copy()
        return out[delay:]


@dataclass
class Perturbation:
    seed: int
    speed: float
    snr_db: float | None  # None: no added noise for this copy
    echo: Echo | None = None
    _chain: object = field(repr=False, default=None)
    _noise: object = field(repr=False, default=None)
    _frozen: bool = field(repr=False, default=False)
    _level: float = field(repr=False, default=0.0)  # RMS of the loudest block so far

    def apply(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        """Same parameters for every block; the noise itself is fresh per block."""
        from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

        if self.echo is not None:  # the room first: noise and the channel come after it
            block = self.echo.apply(block, sample_rate)
        if not self._frozen:
            _seed_globals(self.seed)  # audiomentations draws from the global generators
            self._chain.randomize_parameters(samples=block, sample_rate=sample_rate)
            self._chain.freeze_parameters()
            self._frozen = True
        if self.snr_db is not None:
            self._level = max(self._level, float(calculate_rms(block)))
            self._noise.parameters["desired_noise_rms"] = float(calculate_desired_noise_rms(self._level, self.snr_db))
        return self._chain(samples=block, sample_rate=sample_rate).astype(np.float32, copy=False)


def draw(seed: int, max_speed_change: float = 0.12) -> Perturbation:
    from audiomentations import AddColorNoise, BandPassFilter, Compose, Gain

    rng = np.random.default_rng(seed)
    speed = float(rng.uniform(1 - max_speed_change, 1 + max_speed_change))
    snr_db = float(rng.uniform(*SNR_RANGE_DB)) if rng.uniform() < NOISE_CHANCE else None
    echo = (Echo(float(rng.uniform(*ECHO_DELAY_S)), float(10 ** (rng.uniform(*ECHO_GAIN_DB) / 20)))
            if rng.uniform() < ECHO_CHANCE else None)
    noise = AddColorNoise(min_snr_db=snr_db or 0.0, max_snr_db=snr_db or 0.0, p=1.0 if snr_db is not None else 0.0)
    chain = Compose(
        [
            noise,
            BandPassFilter(  # 300-3400 Hz-ish: telephone and cheap radio
                min_center_freq=900.0, max_center_freq=1200.0, min_bandwidth_fraction=1.5,
                max_bandwidth_fraction=1.95, p=0.3,
            ),
            Gain(min_gain_db=-8.0, max_gain_db=6.0, p=0.5),
        ]
    )
    return Perturbation(seed=seed, speed=speed, snr_db=snr_db, echo=echo, _chain=chain, _noise=noise)


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
