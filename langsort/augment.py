"""Perturbed copies of training recordings, so the classifier learns the language and not
the voice, the microphone or the channel.

A `Perturbation` is drawn once per (recording, copy) from a seed and then applied to every
block of that recording, so a copy is one consistent "other recording": another speaking
rate and pitch (speed perturbation, done by the resampler), background noise at one SNR,
a telephone-like band limit, another level. The noise level follows the loudest block so
far (the speech), not the first block: a copy whose opening is quiet still gets its drawn
SNR once the speech starts. SpecAugment-style masking happens later, on the spectrogram
grids during training (see langsort.train.data).
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


@dataclass
class Perturbation:
    seed: int
    speed: float
    snr_db: float | None  # None: no added noise for this copy
    _chain: object = field(repr=False, default=None)
    _noise: object = field(repr=False, default=None)
    _frozen: bool = field(repr=False, default=False)
    _level: float = field(repr=False, default=0.0)  # RMS of the loudest block so far

    def apply(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        """Same parameters for every block; the noise itself is fresh per block."""
        from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

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
    return Perturbation(seed=seed, speed=speed, snr_db=snr_db, _chain=chain, _noise=noise)


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
