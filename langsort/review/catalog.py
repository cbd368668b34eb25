"""What the review pages show, read from the manifests: the file table in order of doubt,
filtered and cut into pages, and one recording with its timeline, clips and decisions.

files.parquet is read once (it is one row per file); clips and segments are read per
recording with a Parquet filter, so an archive of many hours never sits in memory.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq

from langsort import manifest, reviews, storage
from langsort.errors import LangsortError
from langsort.parts import input_root_of

PER_PAGE = 100


@dataclass(frozen=True)
class Query:
    """The filters of the file table (None: no filter)."""

    status: str | None = None
    language: str | None = None
    text: str | None = None  # part of the path, any case
    mixed: bool = False
    reviewed: bool | None = None
    page: int = 1


def doubt_order(files: pd.DataFrame, decided: set[str]) -> pd.DataFrame:
    """Most doubtful first: files nobody has decided before reviewed ones; then unknown
    files, mixed files, the other labelled files, unreadable files last; within each, the
    least confident first."""
    mixed = files["mixed"].fillna(False).astype(bool) if "mixed" in files else pd.Series(False, index=files.index)
    rank = files.status.map({manifest.STATUS_UNKNOWN: 0, manifest.STATUS_OK: 2, manifest.STATUS_ERROR: 3}).fillna(3)
    key = pd.DataFrame(dict(reviewed=files.path.isin(decided), rank=rank.where(~mixed, 1),
                            confidence=files.confidence.fillna(-1.0), path=files.path))
    return files.loc[key.sort_values(["reviewed", "rank", "confidence", "path"], kind="stable").index]


def select(ordered: pd.DataFrame, decided: dict[str, str], query: Query) -> pd.DataFrame:
    keep = pd.Series(True, index=ordered.index)
    if query.status:
        keep &= ordered.status == query.status
    if query.language:
        keep &= ordered.language == query.language
    if query.text:
        keep &= ordered.path.str.contains(query.text, case=False, regex=False)
    if query.mixed and "mixed" in ordered:
        keep &= ordered["mixed"].fillna(False).astype(bool)
    if query.reviewed is not None:
        keep &= ordered.path.isin(decided) == query.reviewed
    return ordered[keep]


def plain(record: dict) -> dict:
    """A row with NaN as None and numpy values as Python ones (for JSON and templates)."""
    out = {}
    for key, value in record.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        out[key] = None if isinstance(value, float) and math.isnan(value) else value
    return out


class Catalog:
    """The manifests of one review session. Decisions are written through `record`, which
    serialises writers so none is lost."""

    def __init__(self, manifests_dir: str, input_root: str | None = None):
        files_path = storage.join(manifests_dir, manifest.FILES_NAME)
        if not storage.exists(files_path):
            raise LangsortError(f"no {manifest.FILES_NAME} in {manifests_dir}: run langsort label first")
        self.manifests_dir = manifests_dir
        self.files = manifest.read(files_path).to_pandas()
        self.labels = manifest.labels_in(self.files.columns)
        self.choices = reviews.choices(self.files)
        self.input_root = input_root or input_root_of(manifests_dir)
        self.paths = frozenset(self.files.path)
        self.has_segments = storage.exists(storage.join(manifests_dir, manifest.SEGMENTS_NAME))
        self._lock = threading.Lock()
        self._load_reviews()

    def _load_reviews(self) -> None:
        self.reviews = reviews.load(self.manifests_dir)
        self.decided = reviews.file_decisions(self.reviews)
        self.ordered = doubt_order(self.files, set(self.decided))

    def record(self, review: reviews.Review) -> dict:
        with self._lock:
            row = reviews.append(self.manifests_dir, review, self.files)
            self._load_reviews()
        return row

    def page(self, query: Query) -> dict:
        chosen = select(self.ordered, self.decided, query)
        pages = max(1, math.ceil(len(chosen) / PER_PAGE))
        page = min(max(1, query.page), pages)
        rows = [plain(r) | dict(reviewed=self.decided.get(r["path"]))
                for r in chosen.iloc[(page - 1) * PER_PAGE : page * PER_PAGE].to_dict("records")]
        return dict(total=len(chosen), page=page, pages=pages, per_page=PER_PAGE, rows=rows)

    def recording(self, path: str) -> dict | None:
        """Everything the page of one recording shows, or None for a path not in files.parquet."""
        if path not in self.paths:
            return None
        row = plain(self.files[self.files.path == path].iloc[0].to_dict())
        history = self.reviews[self.reviews.path == path].sort_values("reviewed_at", ascending=False)
        return dict(
            file=row,
            clips=self._rows_of(manifest.CLIPS_NAME, path),
            segments=self._rows_of(manifest.SEGMENTS_NAME, path) if self.has_segments else None,
            history=[plain(r) | dict(reviewed_at=r["reviewed_at"].isoformat(timespec="seconds"))
                     for r in history.to_dict("records")],
            decided=self.decided.get(path),
            next_path=self.next_to_review(path),
        )

    def next_to_review(self, after: str) -> str | None:
        """The most doubtful file nobody has decided, other than `after`."""
        for path in self.ordered.path:
            if path not in self.decided and path != after:
                return path
        return None

    def _rows_of(self, name: str, path: str) -> list[dict]:
        """One recording's rows of clips.parquet or segments.parquet, in time order."""
        source = storage.join(self.manifests_dir, name)
        if not storage.exists(source):
            return []
        rows = pq.read_table(source, filters=[("path", "==", path)]).to_pylist()
        return [plain(r) for r in sorted(rows, key=lambda r: r["start_s"])]
