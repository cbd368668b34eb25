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
    for seed in range(80):
        perturbation = augment.draw(seed)
        if perturbation.snr_db is None or perturbation.echo is not None:
            continue  # an echo builds up over the tone: not this test's subject either
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


def test_an_echo_repeats_and_decays_the_same_however_the_blocks_are_cut():
    click = np.zeros(2 * RATE, np.float32)
    click[0] = 1.0
    whole = augment.Echo(delay_s=0.1, gain=0.5).apply(click, RATE)
    heard = np.flatnonzero(whole)
    np.testing.assert_array_equal(heard[:4], [0, 1600, 3200, 4800])
    np.testing.assert_allclose(whole[heard[:4]], [1.0, 0.5, 0.25, 0.125])
    echo = augment.Echo(delay_s=0.1, gain=0.5)  # blocks shorter and longer than the delay
    pieces = [echo.apply(block, RATE) for block in np.split(click, [700, 5000, 5001, 20000])]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-7)
