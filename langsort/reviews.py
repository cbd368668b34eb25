"""Decisions made by people (`langsort review`) and what the rest of langsort takes from them.

A decision says which language a whole recording is in (no `start_s`/`end_s`) or one stretch
of it. Every decision is kept in MANIFESTS/reviews.parquet as history; the latest one for a
path, or for one stretch of a path, is the one that counts. `sort` follows whole-file
decisions, `report` measures the model against them and `prepare --reviewed` turns them
into training data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import asdict, dataclass

import pandas as pd
import pyarrow as pa

from langsort import manifest, storage
from langsort.corpus import InputFile
from langsort.errors import LangsortError

UNKNOWN, NOT_SPEECH = "unknown", "not speech"
NOT_A_LANGUAGE = (UNKNOWN, NOT_SPEECH)
REVIEWED_PREFIX = "_reviewed"  # training paths of reviewed recordings: _reviewed/<language>/<path>
MAX_REVIEWER, MAX_NOTE = 200, 2000
KEY = ["path", "start_s", "end_s"]


class ReviewError(ValueError):
    """A decision that cannot be stored, with a message for the person who made it."""


class UnknownRecording(ReviewError):
    """The path is not in files.parquet."""


@dataclass(frozen=True)
class Review:
    path: str
    language: str
    start_s: float | None = None
    end_s: float | None = None
    reviewer: str | None = None
    note: str | None = None


def choices(files: pd.DataFrame) -> list[str]:
    """What a reviewer may answer: the model's labels, then `unknown` and `not speech`."""
    return manifest.labels_in(files.columns) + list(NOT_A_LANGUAGE)


def validate(review: Review, files: pd.DataFrame) -> Review:
    """The review as it will be stored (trimmed, empty text as null), or ReviewError."""
    rows = files[files.path == review.path]
    if rows.empty:
        raise UnknownRecording(f"{review.path!r} is not a recording in files.parquet")
    if rows.status.iloc[0] == manifest.STATUS_ERROR:
        raise ReviewError(f"{review.path!r} could not be read as audio, so there is nothing to decide")
    language = str(review.language or "").strip()
    if language not in choices(files):
        raise ReviewError(f"unknown language {language!r}: choose one of {', '.join(choices(files))}")
    start, end = review.start_s, review.end_s
    if (start is None) != (end is None):
        raise ReviewError("give both start_s and end_s for a stretch, or neither for the whole file")
    if start is not None:
        duration = rows.duration_s.iloc[0]
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise ReviewError(f"a stretch needs 0 <= start_s < end_s, got {start}..{end}")
        if pd.notna(duration) and end > duration + 0.5:
            raise ReviewError(f"the stretch ends at {end:.1f} s, after the recording ({duration:.1f} s)")
    return Review(review.path, language, start, end,
                  _text(review.reviewer, MAX_REVIEWER, "reviewer"), _text(review.note, MAX_NOTE, "note"))


def _text(value: str | None, limit: int, name: str) -> str | None:
    value = (value or "").strip()
    if len(value) > limit:
        raise ReviewError(f"{name} is longer than {limit} characters")
    return value or None


def path_of(manifests_dir: str) -> str:
    return storage.join(manifests_dir, manifest.REVIEWS_NAME)


def _history(manifests_dir: str) -> pa.Table:
    path = path_of(manifests_dir)
    return manifest.read(path) if storage.exists(path) else manifest.REVIEWS_SCHEMA.empty_table()


def load(manifests_dir: str) -> pd.DataFrame:
    """Every decision, oldest first (an empty table when nobody has reviewed yet)."""
    return _history(manifests_dir).to_pandas()


def append(manifests_dir: str, review: Review, files: pd.DataFrame, now: dt.datetime | None = None) -> dict:
    """Validate and store one decision; returns the stored row once it is on disk (the file
    is rewritten atomically, so an acknowledged decision survives a kill). Callers that
    append concurrently must serialise the calls."""
    review = validate(review, files)
    row = dict(asdict(review), reviewed_at=now or dt.datetime.now(dt.timezone.utc))
    history = _history(manifests_dir).cast(manifest.REVIEWS_SCHEMA)
    updated = pa.concat_tables([history, manifest.table([row], manifest.REVIEWS_SCHEMA)])
    manifest.write_atomic(updated, path_of(manifests_dir))
    return row


def latest(reviews: pd.DataFrame) -> pd.DataFrame:
    """The decision that counts for each path and stretch: the most recent one."""
    ordered = reviews.sort_values("reviewed_at", kind="stable")
    return ordered.drop_duplicates(KEY, keep="last").reset_index(drop=True)


def file_decisions(reviews: pd.DataFrame) -> dict[str, str]:
    """path -> language of the latest whole-file decision."""
    whole = latest(reviews)
    whole = whole[whole.start_s.isna()]
    return dict(zip(whole.path, whole.language))


def agreement(files: pd.DataFrame, reviews: pd.DataFrame) -> dict:
    """How often the model said what the reviewers decided, over whole-file decisions.
    The model's answer is its language for an `ok` file, else unknown; a reviewer's
    `not speech` counts as unknown."""
    decided = file_decisions(reviews)
    model = {p: (lang if status == manifest.STATUS_OK else UNKNOWN)
             for p, status, lang in zip(files.path, files.status, files.language) if p in decided}
    pairs = Counter((model[p], UNKNOWN if lang in NOT_A_LANGUAGE else lang) for p, lang in decided.items() if p in model)
    agree = sum(n for (said, decided_as), n in pairs.items() if said == decided_as)
    stretches = latest(reviews)
    return dict(files=sum(pairs.values()), agree=agree,
                segments=int(stretches.start_s.notna().sum()),
                disagreements=[dict(model=a, reviewer=b, files=n) for (a, b), n in pairs.most_common() if a != b])


def training_inputs(manifests_dir: str, input_root: str) -> list:
    """Reviewed recordings in a model language, one prepare.ExtraRecording per (recording,
    language).

    Where a recording has stretch decisions they are used and its whole-file decision is
    not: a person who marked stretches said precisely where each language is.
    """
    from langsort.prepare import ExtraRecording

    if not storage.exists(path_of(manifests_dir)):
        raise LangsortError(f"no {manifest.REVIEWS_NAME} in {manifests_dir}: review recordings with langsort review first")
    decisions = latest(load(manifests_dir))
    decisions = decisions[~decisions.language.isin(NOT_A_LANGUAGE)]
    out = []
    for path, rows in decisions.groupby("path", sort=True):
        if ".." in path.split("/") or path.startswith("/"):
            continue  # never reaches outside the input root
        stretches = rows[rows.start_s.notna()]
        chosen = stretches if len(stretches) else rows
        for language, group in chosen.groupby("language", sort=True):
            windows = (tuple(sorted(zip(group.start_s.astype(float), group.end_s.astype(float))))
                       if len(stretches) else None)
            file = InputFile(source=storage.join(input_root, path), path=f"{REVIEWED_PREFIX}/{language}/{path}",
                             label=language)
            out.append(ExtraRecording(file, windows))
    return out
