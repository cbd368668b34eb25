import numpy as np

from langsort import augment

RATE = 16000


def residual_snr_db(out: np.ndarray, frequency: float) -> float:
    """SNR of a sine at `frequency` inside `out`: the fitted sine against what is left."""
    t = np.arange(len(out)) / RATE
    basis = np.stack([np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t)], axis=1)
    fit = basis @ np.linalg.lstsq(basis, out, rcond=None)[0]
    return 10 * np.log10(np.mean(fit ** 2) / np.mean((out - fit) ** 2))


def test_a_copy_with_a_quiet_opening_still_gets_the_drawn_snr():
    """The noise level used to be set by the first block: 10 quiet seconds first meant almost
    no noise for the whole copy."""
    tone = (0.3 * np.sin(2 * np.pi * 500.0 * np.arange(10 * RATE) / RATE)).astype(np.float32)
    checked = 0
    for seed in range(40):
        perturbation = augment.draw(seed)
        if perturbation.snr_db is None:
            continue
        perturbation.apply(np.zeros(10 * RATE, np.float32), RATE)  # the quiet opening
        if perturbation._chain.transforms[1].parameters["should_apply"]:
            continue  # a telephone band filters the noise too: not this test's subject
        out = perturbation.apply(tone, RATE)
        assert abs(residual_snr_db(out, 500.0) - perturbation.snr_db) < 1.5, seed
        checked += 1
    assert checked >= 5


def test_the_same_seed_gives_the_same_copy():
    block = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    first, second = augment.draw(7), augment.draw(7)
    np.testing.assert_array_equal(first.apply(block, RATE), second.apply(block, RATE))
    assert (first.speed, first.snr_db) == (second.speed, second.snr_db)
