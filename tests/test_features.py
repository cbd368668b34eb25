import numpy as np
import pytest

from langsort.features import LogMelStream, _mel_basis, SpectrogramParams, clip_grid, grid_to_png

PARAMS = SpectrogramParams()



def log_mel(samples, params):
    """The whole array's log-mel in one push."""
    return LogMelStream(params).push(samples)[0]

def tone(seconds: float, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_streaming_log_mel_equals_one_pass_whatever_the_block_cuts():
    x = tone(3.0) + 0.01 * np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    whole = log_mel(x, PARAMS)
    stream = LogMelStream(PARAMS)
    pieces = [stream.push(x[a:b])[0] for a, b in [(0, 1000), (1000, 1003), (1003, 30000), (30000, 48000)]]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-3)
    assert whole.shape == (1 + (48000 - PARAMS.n_fft) // PARAMS.hop_length, PARAMS.n_mels)


@pytest.mark.parametrize("params", [
    PARAMS,
    SpectrogramParams(sample_rate=22050, n_fft=2048, win_length=2048, n_mels=128, fmin=0.5, fmax=11025.0),
    SpectrogramParams(sample_rate=8000, n_fft=256, win_length=200, n_mels=40, fmin=300.0, fmax=3800.0),
], ids=["default", "librosa-default", "narrowband"])
def test_mel_filterbank_is_librosas(params):
    """langsort writes out the filterbank to keep librosa's slow import out of workers."""
    import librosa

    expected = librosa.filters.mel(sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels,
                                   fmin=params.fmin, fmax=params.fmax)
    np.testing.assert_allclose(_mel_basis(params), expected.T, rtol=0, atol=1e-7)


def test_a_tone_lights_up_the_mel_band_of_its_frequency():
    low, high = log_mel(tone(1.0, 300.0), PARAMS), log_mel(tone(1.0, 3000.0), PARAMS)
    assert low.mean(axis=0).argmax() < high.mean(axis=0).argmax()


def test_grid_has_the_fixed_shape_and_ignores_recording_level():
    mel = log_mel(tone(7.3) * np.linspace(0.1, 1, int(7.3 * 16000), dtype=np.float32), PARAMS)
    grid = clip_grid(mel, PARAMS)
    assert grid.shape == (PARAMS.n_mels, PARAMS.frames) and grid.dtype == np.uint8
    assert grid.max() == 255
    np.testing.assert_array_equal(clip_grid(mel - 20.0, PARAMS), grid)


def test_grid_png_is_written(tmp_path):
    grid = clip_grid(log_mel(tone(3.0), PARAMS), PARAMS)
    grid_to_png(grid, str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").stat().st_size > 0


def test_params_round_trip_and_validate():
    assert SpectrogramParams.from_dict(PARAMS.to_dict()) == PARAMS
    with pytest.raises(ValueError):
        SpectrogramParams(fmax=9000.0)
