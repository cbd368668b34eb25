"""The Parquet tables langsort writes: the only place their columns are named.

Two families:
- the *prepared* dataset (`langsort prepare`): `files.parquet` (one row per input file) and
  `clips.parquet` (one row per clip, with its spectrogram grid), read by `train`;
- the *label* manifests (`langsort label`, see SPEC.md): `files.parquet`, `clips.parquet`
  and `segments.parquet` (the language timeline) with one `p_<label>` column per language,
  read by `sort`, `report`, `annotate` and `review`.

Every write is atomic (temporary file, then rename), so a killed job never leaves a
half-written table where a finished one is expected.
"""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from langsort import storage

STATUS_OK = "ok"
STATUS_UNKNOWN = "unknown"
STATUS_ERROR = "error"

FILES_NAME = "files.parquet"
FILES_CSV_NAME = "files.csv"  # files.parquet for spreadsheets
CLIPS_NAME = "clips.parquet"
SEGMENTS_NAME = "segments.parquet"

PREPARED_FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # POSIX path relative to the input root
        ("label", pa.string()),  # first folder level of a LABELLED tree, else null
        ("status", pa.string()),  # ok (gave clips) | unknown (no usable speech) | error
        ("duration_s", pa.float64()),
        ("n_clips", pa.int64()),
        ("error", pa.string()),  # why, when status is not ok
        ("sample_rate", pa.int64()),
        ("channels", pa.int64()),
    ]
)

PREPARED_CLIPS_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("label", pa.string()),
        ("augment", pa.int32()),  # 0: the recording as is; k > 0: k-th perturbed copy
        ("clip_index", pa.int64()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("grid", pa.binary()),  # uint8 [n_mels, frames], row-major (see features.clip_grid)
    ]
)


def prob_column(label: str) -> str:
    return f"p_{label}"


def label_files_schema(labels: list[str]) -> pa.Schema:
    """`MANIFESTS/files.parquet` as SPEC.md defines it."""
    return pa.schema(
        [
            ("path", pa.string()),
            ("status", pa.string()),
            ("language", pa.string()),
            ("confidence", pa.float64()),
            ("duration_s", pa.float64()),
            ("n_clips", pa.int64()),
            ("error", pa.string()),
            *[(prob_column(label), pa.float64()) for label in labels],
            ("model_sha256", pa.string()),
            ("languages", pa.list_(pa.string())),  # languages present, largest share of speech time first
            ("mixed", pa.bool_()),  # a second language holds at least --min-share of the speech
        ]
    )


def label_segments_schema(labels: list[str]) -> pa.Schema:
    """`MANIFESTS/segments.parquet`: the language timeline, one row per stretch of one
    language inside a file; ordered, non-overlapping, gaps are silence or non-speech."""
    return pa.schema(
        [
            ("path", pa.string()),
            ("segment_index", pa.int64()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
            ("language", pa.string()),  # null where no language is confident
            ("confidence", pa.float64()),
            *[(prob_column(label), pa.float64()) for label in labels],
            ("model_sha256", pa.string()),
        ]
    )


def label_clips_schema(labels: list[str]) -> pa.Schema:
    """`MANIFESTS/clips.parquet` as SPEC.md defines it."""
    return pa.schema(
        [
            ("path", pa.string()),
            ("clip_index", pa.int64()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
            ("language", pa.string()),
            ("confidence", pa.float64()),
            *[(prob_column(label), pa.float64()) for label in labels],
            ("model_sha256", pa.string()),
        ]
    )


def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts keyed by column name, missing keys null) as a table of `schema`."""
    return pa.Table.from_pylist(rows, schema=schema)


def write_atomic(tbl: pa.Table, path: str) -> None:
    """Write Parquet so that `path` is either the old file or the complete new one
    (local or object store, see langsort.storage)."""
    buffer = pa.BufferOutputStream()
    pq.write_table(tbl, buffer)
    storage.write_bytes_atomic(path, buffer.getvalue().to_pybytes())


def csv_bytes(tbl: pa.Table) -> bytes:
    """The table as CSV for spreadsheets: the same rows and columns, list columns joined
    with ';', nulls empty; UTF-8 with a byte-order mark, so Excel shows accented names right."""
    frame = tbl.to_pandas()
    for column in tbl.schema:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            frame[column.name] = frame[column.name].map(lambda v: None if v is None else ";".join(map(str, v)))
    return frame.to_csv(index=False).encode("utf-8-sig")


def read(path: str) -> pa.Table:
    with storage.open_read(path) as f:
        return pq.read_table(f)


class AtomicParquetWriter:
    """Stream record batches into one Parquet file that appears only when complete."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        self._writer = pq.ParquetWriter(self._tmp, schema)
        self.rows = 0

    def write(self, tbl: pa.Table) -> None:
        if tbl.num_rows:
            self._writer.write_table(tbl)
            self.rows += tbl.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.commit() if exc_type is None else self.abort()


# --------------------------------------------------------------------------------------
# Decisions made by people (`langsort review`), read by sort, report and prepare --reviewed

REVIEWS_NAME = "reviews.parquet"

REVIEWS_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # as in files.parquet
        ("start_s", pa.float64()),  # null with end_s: a decision about the whole file
        ("end_s", pa.float64()),
        ("language", pa.string()),  # a model label, "unknown" or "not speech"
        ("reviewer", pa.string()),
        ("note", pa.string()),
        ("reviewed_at", pa.timestamp("us", tz="UTC")),
    ]
)


def labels_in(columns) -> list[str]:
    """The model's labels, read back from a label manifest's `p_<label>` columns."""
    return [c[len(prob_column("")):] for c in columns if c.startswith(prob_column(""))]
