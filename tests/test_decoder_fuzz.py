"""Property-based: whatever bytes or odd-but-valid audio arrive, the decoder path returns a
result or a one-line reason — it never raises and never yields non-finite samples."""

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langsort.clips import SpanWork, cut_spans, probe
from langsort.corpus import InputFile
from langsort.prepare import PrepareConfig

CONFIG = PrepareConfig()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_file(path: str):
    file = InputFile(source=path, path="x")
    probed = probe(file)
    info, error = probed.info, probed.error
    if info is None:
        assert error and "\n" not in error
        return None
    result = cut_spans([SpanWork(file, 0.0, info.duration_s)], CONFIG)[0]
    assert result.error is None or "\n" not in result.error
    return result


@FUZZ
@given(data=st.binary(max_size=4096), ext=st.sampled_from(["wav", "mp3", "ogg", "flac", "bin"]))
def test_random_bytes_never_crash_the_decoder(tmp_path, data, ext):
    path = tmp_path / f"random.{ext}"
    path.write_bytes(data)
    run_file(str(path))


@FUZZ
@given(
    rate=st.sampled_from([1000, 8000, 11025, 44100, 96000, 192000]),
    channels=st.integers(1, 8),
    seconds=st.floats(0.0, 4.0),
    subtype=st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "DOUBLE"]),
    poison=st.booleans(),
)
def test_odd_but_valid_audio_is_decoded_or_explained(tmp_path, rate, channels, seconds, subtype, poison):
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1, 1, (int(rate * seconds), channels)).astype(np.float32)
    if poison and subtype in ("FLOAT", "DOUBLE") and len(samples):
        samples[:: max(1, len(samples) // 7)] = np.nan
        samples[0] = np.inf
    path = tmp_path / "odd.wav"
    soundfile.write(path, samples, rate, subtype=subtype)
    result = run_file(str(path))
    if result is not None:
        for _, _, grid in result.clips:
            assert len(grid) == 128 * 224
