"""`label` reading the archive from and writing the manifests to s3://, against a local
S3-compatible server (moto) started by the test on loopback."""

import pandas as pd

from langsort import manifest, storage
from langsort.export import export
from langsort.label import label


def test_label_reads_and_writes_s3(ray_local, s3, trained_small, small_corpus, tmp_path):
    model = export(trained_small.model_dir, str(tmp_path / "model.onnx")).path
    files = sorted(p for p in small_corpus.rglob("*") if p.is_file())[:4]
    for path in files:
        s3.upload_file(str(path), "archive", f"tapes/{path.relative_to(small_corpus)}")
    s3.upload_file(model, "archive", "models/model.onnx")
    s3.put_object(Bucket="archive", Key="tapes/notes.txt", Body=b"not audio")

    summary = label("s3://archive/tapes", "s3://archive/models/model.onnx", "s3://archive/manifests", progress=False)

    manifests = manifest.read("s3://archive/manifests/files.parquet").to_pandas()
    expected = sorted([str(p.relative_to(small_corpus)) for p in files] + ["notes.txt"])
    assert list(manifests.path) == expected and summary.files == 5
    assert manifests.set_index("path").status["notes.txt"] == "error"
    assert (manifests[manifests.path != "notes.txt"].n_clips > 0).all()
    clips = manifest.read("s3://archive/manifests/clips.parquet").to_pandas()
    assert len(clips) == manifests.n_clips.sum()
    assert storage.exists("s3://archive/manifests/.langsort/run.json")
    again = label("s3://archive/tapes", "s3://archive/models/model.onnx", "s3://archive/manifests", progress=False)
    assert again.labelled_now == 1  # notes.txt: an error row is never reused by content
    pd.testing.assert_frame_equal(manifest.read("s3://archive/manifests/files.parquet").to_pandas(), manifests)
