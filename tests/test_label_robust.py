"""label against what a newcomer or a hostile archive does: bad files become rows, fast,
and nothing poisons the manifests or the resume state."""

import io
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import soundfile

from langsort import manifest
from langsort.label import label


def tone(path, seconds=4.0, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.sin(np.arange(int(rate * seconds)) / 5)).astype(np.float32), rate)


def test_files_csv_has_the_rows_of_files_parquet_with_lists_joined():
    tbl = pa.table({"path": ["caf\u00e9.wav", "b.wav"], "languages": [["maya", "spanish"], None],
                    "confidence": [0.75, None]})
    data = manifest.csv_bytes(tbl)
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheets read accented names right
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False)
    assert list(back.columns) == ["path", "languages", "confidence"]
    assert back.values.tolist() == [["caf\u00e9.wav", "maya;spanish", "0.75"], ["b.wav", "", ""]]


def test_label_writes_files_csv_beside_files_parquet(ray_local, tiny_model, tmp_path):
    tone(tmp_path / "in" / "a" / "tone.wav")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    out = tmp_path / "manifests"
    label(str(tmp_path / "in"), tiny_model, str(out), progress=False)
    parquet = pd.read_parquet(out / manifest.FILES_NAME)
    csv = pd.read_csv(out / manifest.FILES_CSV_NAME, encoding="utf-8-sig")
    assert list(csv.columns) == list(parquet.columns) and list(csv.path) == ["a/tone.wav", "notes.txt"]
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)


def test_every_manifest_column_is_documented():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "manifests.md")).read()
    documented = set(re.findall(r"`([a-z_<>0-9]+)`", doc))
    labels = ["<label>"]
    for schema in (manifest.label_files_schema(labels), manifest.label_clips_schema(labels)):
        assert set(schema.names) <= documented, set(schema.names) - documented
    for name in (manifest.FILES_NAME, manifest.FILES_CSV_NAME, manifest.CLIPS_NAME):
        assert f"`{name}`" in doc
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "(docs/manifests.md)" in readme
