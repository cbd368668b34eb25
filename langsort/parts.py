"""label's resume state: finished files committed in small atomic parts, the manifests
rebuilt from them, and the record of what was labelled.

MANIFESTS/.langsort/parts/ holds one part per commit and per table (clips, segments, then files:
a file counts as done once its row is in a files part, so a kill between the two loses
nothing that was reported). Each row carries the content sha256 of its file, so a re-run
reuses work by content, whatever the file is called now. After a run the parts are
compacted into one per table, so the state does not grow with every run (thousands of small
objects on S3 otherwise). MANIFESTS/.langsort/run.json says which folder was labelled,
for `sort` and `review`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from langsort import manifest, storage
from langsort.errors import LangsortError
from langsort.model import ModelInfo

STATE_DIR = ".langsort"
RUN_FILE = f"{STATE_DIR}/run.json"
CONTENT_COLUMN = "content_sha256"


def _part_schema(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(CONTENT_COLUMN, pa.string()))


@dataclass
class LabelSummary:
    manifests: str
    files: int
    labelled_now: int = 0
    reused: int = 0
    counts: dict = field(default_factory=dict)  # status / "language:<label>" -> files
    seconds: float = 0.0
    executor: str = ""  # "ray" or "local": where the files were labelled


class PartStore:
    """The committed parts of one model's label schema (parts of models with other labels
    sit beside them untouched)."""

    def __init__(self, manifests_dir: str, model: ModelInfo):
        self.manifests_dir = manifests_dir
        self.dir = storage.join(manifests_dir, STATE_DIR, "parts")
        self.model = model
        # commit order: a files part last, so its rows only count once their clips are in
        self.schemas = {
            "clips": _part_schema(manifest.label_clips_schema(model.labels)),
            "segments": _part_schema(manifest.label_segments_schema(model.labels)),
            "files": _part_schema(manifest.label_files_schema(model.labels)),
        }

    def load(self) -> dict[str, pd.DataFrame]:
        """Rows committed earlier by this model, per table, in commit order."""
        frames = {kind: self._read(kind)[1] for kind in self.schemas}
        return {kind: frame[frame.model_sha256 == self.model.sha256] for kind, frame in frames.items()}

    def commit(self, rows: dict[str, list[dict]]) -> None:
        """One atomic part per table, the files part last."""
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        for kind, schema in self.schemas.items():
            manifest.write_atomic(manifest.table(rows.get(kind, []), schema), self._part_path(kind, stamp))

    def compact(self) -> None:
        """Every part of this schema rewritten as one per table; the old ones removed after."""
        read = {kind: self._read(kind) for kind in self.schemas}
        if all(len(names) <= 1 for names, _ in read.values()):
            return
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        for kind, (_, frame) in read.items():
            records = _records(frame, self.schemas[kind].names)
            manifest.write_atomic(manifest.table(records, self.schemas[kind]), self._part_path(kind, stamp))
        for names, _ in read.values():
            for name in names:
                storage.remove(name)

    def _part_path(self, kind: str, stamp: str) -> str:
        return storage.join(self.dir, f"{kind}-{stamp}.parquet")

    def _read(self, kind: str) -> tuple[list[str], pd.DataFrame]:
        """(part files, their rows) of this schema."""
        schema = self.schemas[kind]
        names, tables = [], []
        for name in storage.glob_names(self.dir, f"{kind}-", ".parquet"):
            tbl = manifest.read(name)
            if tbl.schema.equals(schema, check_metadata=False):
                names.append(name)
                tables.append(tbl)
        return names, (pa.concat_tables(tables) if tables else schema.empty_table()).to_pandas()


def rebuild_manifests(store: PartStore, paths: list[str], reused: dict[str, list[dict]]) -> LabelSummary:
    """files, clips and segments .parquet for exactly the current input files, from the parts
    and the rows reused from files of the same content under another name."""
    frames = store.load()
    for kind, rows in reused.items():
        if rows:
            frames[kind] = pd.concat([frames[kind], pd.DataFrame(rows)], ignore_index=True)
    wanted = set(paths)
    files = frames["files"]
    files = files[files.path.isin(wanted)].drop_duplicates("path", keep="last").sort_values("path")
    shas = dict(zip(files.path, files[CONTENT_COLUMN]))
    labels = store.model.labels
    files_table = _write(store, files, manifest.label_files_schema(labels), manifest.FILES_NAME)
    storage.write_bytes_atomic(storage.join(store.manifests_dir, manifest.FILES_CSV_NAME),
                               manifest.csv_bytes(files_table))
    for kind, index, schema, name in (
        ("clips", "clip_index", manifest.label_clips_schema(labels), manifest.CLIPS_NAME),
        ("segments", "segment_index", manifest.label_segments_schema(labels), manifest.SEGMENTS_NAME),
    ):
        rows = frames[kind]
        rows = rows[rows.path.map(shas).eq(rows[CONTENT_COLUMN]) & rows.path.isin(wanted)]
        _write(store, rows.drop_duplicates(["path", index], keep="last").sort_values(["path", index]), schema, name)
    counts = files.status.value_counts().to_dict()
    counts.update({f"language:{k}": v for k, v in files.language.value_counts().to_dict().items()})
    return LabelSummary(manifests=store.manifests_dir, files=len(files), counts=counts)


def _write(store: PartStore, frame: pd.DataFrame, schema: pa.Schema, name: str) -> pa.Table:
    """One manifest of `frame`'s rows in `schema`, written atomically beside the parts."""
    tbl = manifest.table(_records(frame, schema.names), schema)
    manifest.write_atomic(tbl, storage.join(store.manifests_dir, name))
    return tbl


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    return frame[columns].astype(object).where(frame[columns].notna(), None).to_dict("records")


def record_run(manifests_dir: str, input_root: str, model_path: str, threshold: float) -> None:
    """Remember what was labelled, so `sort` and `review` find the archive without being told."""
    run = dict(input_root=storage.absolute(input_root), model=storage.absolute(model_path), threshold=threshold)
    storage.write_bytes_atomic(storage.join(manifests_dir, RUN_FILE), json.dumps(run, indent=2).encode())


def input_root_of(manifests_dir: str) -> str:
    """The INPUT folder `label` recorded beside the manifests."""
    path = storage.join(manifests_dir, RUN_FILE)
    if not storage.exists(path):
        raise LangsortError(f"{manifests_dir} has no {RUN_FILE}: give the labelled folder with --input")
    return json.loads(storage.read_bytes(path))["input_root"]
