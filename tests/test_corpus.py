"""Hostile trees: every file found once, nothing followed into a loop, every path storable."""

import os

import numpy as np
import pyarrow as pa

from langsort import synth
from langsort.clips import SpanWork, cut_spans, probe
from langsort.corpus import InputFile, discover
from langsort.prepare import PrepareConfig


def test_odd_names_links_and_folders(tmp_path):
    root = tmp_path / "archive"
    (root / "take.wav").mkdir(parents=True)  # a folder named like an audio file
    (root / "take.wav" / "inner.txt").write_text("x")
    long_name = "a" * 240 + ".wav"
    (root / long_name).write_bytes(b"")
    os.symlink("loop", root / "loop")  # a link to itself
    os.symlink(str(root), root / "again")  # a link back to the root folder: not followed
    raw = os.path.join(os.fsencode(root), b"caf\xe9-latin1.wav")  # not UTF-8
    with open(raw, "wb") as f:
        f.write(b"RIFF")
    files = {f.path: f for f in discover(str(root))}
    assert set(files) == {"take.wav/inner.txt", long_name, "loop", "caf\\xe9-latin1.wav"}  # "again" not followed
    assert files["loop"].error == "broken or looping symbolic link"
    pa.array(list(files))  # every path is valid UTF-8 for Parquet
    assert os.path.exists(files["caf\\xe9-latin1.wav"].source)  # and the file still opens


def test_labels_come_from_the_first_folder_level(tmp_path):
    (tmp_path / "maya" / "2019").mkdir(parents=True)
    (tmp_path / "maya" / "2019" / "a.wav").write_bytes(b"")
    (tmp_path / "loose.wav").write_bytes(b"")
    labels = {f.path: f.label for f in discover(str(tmp_path), labelled=True)}
    assert labels == {"maya/2019/a.wav": "maya", "loose.wav": None}


def test_telephone_hi_res_and_many_channels_are_prepared(tmp_path, speech_cache):
    speech = speech_cache("spanish", 8.0)
    for name, rate, channels in (("phone.wav", 8000, 1), ("hires.flac", 96000, 2), ("surround.wav", 48000, 6)):
        path = synth.write(str(tmp_path / name), speech, synth.ESPEAK_RATE, rate, channels)
        file = InputFile(source=path, path=name)
        probed = probe(file)
        info, error = probed.info, probed.error
        assert error is None and info.channels == channels
        result = cut_spans([SpanWork(file, 0.0, info.duration_s)], PrepareConfig())[0]
        assert result.error is None and result.clips, name
        assert all(np.frombuffer(g, np.uint8).size == 128 * 224 for _, _, g in result.clips)
