import os
from pathlib import Path

import numpy as np
import pytest

from langsort import audio, synth

FORMATS = [("wav", 8000, 1), ("flac", 44100, 2), ("mp3", 22050, 2), ("ogg", 48000, 1), ("mp3", 16000, 1), ("ogg", 32000, 2)]


@pytest.mark.parametrize("ext,rate,channels", FORMATS)
def test_every_format_rate_and_channel_count_decodes_to_mono_at_the_analysis_rate(
    tmp_path, speech_cache, ext, rate, channels
):
    speech = speech_cache("spanish", 6.0)
    path = synth.write(str(tmp_path / f"x.{ext}"), speech, synth.ESPEAK_RATE, rate, channels)
    info = audio.probe(path)
    assert (info.sample_rate, info.channels) == (rate, channels)
    decoded = read(path, 16000)
    assert decoded.ndim == 1 and decoded.dtype == np.float32
    assert abs(len(decoded) / 16000 - 6.0) < 0.1  # mp3 adds a little padding
    # same loudness envelope as the source: it is the same speech, not noise
    src = read(synth.write(str(tmp_path / "ref.wav"), speech), 16000)
    n = min(len(src), len(decoded))
    assert np.corrcoef(np.abs(src[:n:160]), np.abs(decoded[:n:160]))[0, 1] > 0.5 or ext == "mp3"



def read(path, sample_rate):
    """The whole file at `sample_rate`, through the block reader."""
    blocks = list(audio.read_blocks(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)

def test_blocks_cover_the_span_exactly_and_match_one_read(tmp_path, speech_cache):
    path = synth.write(str(tmp_path / "x.flac"), speech_cache("maya", 9.0), synth.ESPEAK_RATE, 44100, 2)
    blocks = list(audio.read_blocks(path, 16000, start_s=2.0, end_s=8.0, block_s=0.7))
    assert len(blocks) > 5
    joined = np.concatenate(blocks)
    assert abs(len(joined) - 6 * 16000) <= 2
    whole = read(path, 16000)
    np.testing.assert_allclose(joined[4000:80000], whole[32000 + 4000 : 32000 + 80000], atol=2e-3)


def test_nan_and_inf_samples_become_silence(tmp_path):
    x = np.zeros(16000, np.float32)
    x[100:200] = np.nan
    x[300] = np.inf
    import soundfile

    soundfile.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    assert np.isfinite(read(str(tmp_path / "nan.wav"), 16000)).all()


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "not readable"), (b"just some notes\n", "not readable"), (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not readable")],
)
def test_unreadable_files_raise_a_one_line_audio_error(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(audio.AudioError, match=reason) as info:
        audio.probe(str(path))
    assert "\n" not in str(info.value) and str(tmp_path) not in str(info.value)


def test_long_recordings_are_cut_into_equal_spans():
    assert audio.spans(100.0, 600.0) == [(0.0, 100.0)]
    parts = audio.spans(3600.0, 600.0)
    assert len(parts) == 6 and parts[-1][1] == 3600.0


def test_a_file_without_read_permission_is_a_one_line_error(tmp_path, speech_cache):
    """Checked as an unprivileged user (root reads any file): a forked child drops to
    uid/gid 65534 and probes the file; the message comes back through a pipe."""
    path = tmp_path / "locked.wav"
    synth.write(str(path), speech_cache("maya", 4.0))
    path.chmod(0o000)
    for part in (tmp_path, *tmp_path.parents):
        if part != Path("/"):
            part.chmod(part.stat().st_mode | 0o005)  # let the other user reach the folder
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        message = "no error"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            audio.probe(str(path))
        except audio.AudioError as exc:
            message = str(exc)
        except BaseException as exc:  # noqa: BLE001 (anything else is reported, not raised in the child)
            message = f"unexpected {type(exc).__name__}: {exc}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == "cannot open: Permission denied"


def test_decoder_notes_on_stderr_are_hidden_and_stderr_comes_back(capfd):
    import os

    from langsort.runtime import stderr_hidden

    with stderr_hidden():
        os.write(2, b"[src/libmpg123/layer3.c] error: part2_3_length too large\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
