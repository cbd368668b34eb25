"""Perturbed copies of training recordings, so the classifier learns the language and not
the voice, the microphone or the channel.

A `Perturbation` is drawn once per (recording, copy) from a seed and then applied to every
block of that recording, so a copy is one consistent "other recording": another speaking
rate and pitch (speed perturbation, done by the resampler), background noise at some SNR,
a telephone-like band limit, another level. SpecAugment-style masking happens later, on the
spectrogram grids during training (see langsort.train.data).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Perturbation:
    seed: int
    speed: float
    _chain: object = field(repr=False, default=None)
    _frozen: bool = field(repr=False, default=False)

    def apply(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        """Same parameters for every block; the noise itself is fresh per block."""
        if not self._frozen:
            _seed_globals(self.seed)  # audiomentations draws from the global generators
        out = self._chain(samples=block, sample_rate=sample_rate)
        if not self._frozen:
            self._chain.freeze_parameters()
            self._frozen = True
        return out.astype(np.float32, copy=False)


def draw(seed: int, max_speed_change: float = 0.12) -> Perturbation:
    from audiomentations import AddColorNoise, BandPassFilter, Compose, Gain

    rng = np.random.default_rng(seed)
    chain = Compose(
        [
            AddColorNoise(min_snr_db=8.0, max_snr_db=35.0, p=0.7),
            BandPassFilter(  # 300-3400 Hz-ish: telephone and cheap radio
                min_center_freq=900.0, max_center_freq=1200.0, min_bandwidth_fraction=1.5,
                max_bandwidth_fraction=1.95, p=0.3,
            ),
            Gain(min_gain_db=-8.0, max_gain_db=6.0, p=0.5),
        ]
    )
    speed = float(rng.uniform(1 - max_speed_change, 1 + max_speed_change))
    return Perturbation(seed=seed, speed=speed, _chain=chain)


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
