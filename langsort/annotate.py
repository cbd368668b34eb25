"""`langsort annotate`: each labelled recording's language timeline as an annotation file
for the tools annotators use: ELAN (.eaf, a `language` tier with the recording linked),
Praat (.TextGrid, an interval tier), media players (.vtt cues such as `maya 0.93`) or CSV.

Written with the field's own libraries (pympi-ling, praatio, webvtt-py), one file per
recording at OUT/<path>.<ext>, from segments.parquet (local or s3:// manifests).
"""

from __future__ import annotations

import csv
import mimetypes
import os
from enum import Enum

from langsort import storage
from langsort.errors import LangsortError

UNCONFIDENT = "unknown"  # what a segment without a confident language is called in the files
TIER = "language"


class AnnotationFormat(str, Enum):
    eaf = "eaf"
    textgrid = "textgrid"
    vtt = "vtt"
    csv = "csv"

    @property
    def extension(self) -> str:
        return {"textgrid": "TextGrid"}.get(self.value, self.value)


def annotate(manifests_dir: str, to: AnnotationFormat, out_dir: str) -> list[str]:
    """Write one annotation file per recording that has segments; the files written."""
    import pandas as pd

    from langsort import manifest
    from langsort.parts import RUN_FILE, input_root_of

    to = AnnotationFormat(to)
    segments_path = storage.join(manifests_dir, manifest.SEGMENTS_NAME)
    if not storage.exists(segments_path):
        raise LangsortError(f"no {manifest.SEGMENTS_NAME} in {manifests_dir}: run langsort label first")
    segments = manifest.read(segments_path).to_pandas()
    durations = manifest.read(storage.join(manifests_dir, manifest.FILES_NAME)).to_pandas().set_index("path").duration_s
    input_root = input_root_of(manifests_dir) if storage.exists(storage.join(manifests_dir, RUN_FILE)) else None
    written = []
    for path, rows in segments.sort_values(["path", "segment_index"]).groupby("path", sort=True):
        target = _target(out_dir, path, to.extension)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        duration = durations.get(path)
        duration = float(duration) if duration is not None and pd.notna(duration) else float(rows.end_s.max())
        media = storage.join(input_root, path) if input_root else None
        WRITERS[to](target, rows, max(duration, float(rows.end_s.max())), media)
        written.append(target)
    return written


def _target(out_dir: str, path: str, extension: str) -> str:
    """OUT/<path>.<ext>, never outside OUT."""
    root = os.path.abspath(out_dir)
    target = os.path.abspath(os.path.join(root, f"{path}.{extension}"))
    if not target.startswith(root + os.sep):
        raise LangsortError(f"refusing to write outside {out_dir}: {path}")
    return target


def _label(row) -> str:
    return row.language if isinstance(row.language, str) else UNCONFIDENT


def write_eaf(target: str, rows, duration_s: float, media: str | None) -> None:
    from pympi.Elan import Eaf

    eaf = Eaf(author="langsort")
    if media:
        eaf.add_linked_file(media if storage.is_remote(media) else f"file://{media}", relpath=os.path.basename(media),
                            mimetype=mimetypes.guess_type(media)[0] or "audio/x-wav")
    eaf.add_tier(TIER)
    eaf.remove_tier("default")
    for row in rows.itertuples():
        eaf.add_annotation(TIER, int(round(row.start_s * 1000)), int(round(row.end_s * 1000)), _label(row))
    eaf.to_file(target)


def write_textgrid(target: str, rows, duration_s: float, media: str | None) -> None:
    from praatio import textgrid

    entries = [(float(r.start_s), float(r.end_s), _label(r)) for r in rows.itertuples()]
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier(TIER, entries, 0.0, duration_s))
    grid.save(target, format="long_textgrid", includeBlankSpaces=True)


def write_vtt(target: str, rows, duration_s: float, media: str | None) -> None:
    import webvtt

    def stamp(seconds: float) -> str:
        milliseconds = int(round(seconds * 1000))
        hours, rest = divmod(milliseconds, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"

    captions = [webvtt.Caption(stamp(r.start_s), stamp(r.end_s), f"{_label(r)} {r.confidence:.2f}")
                for r in rows.itertuples()]
    webvtt.WebVTT(captions=captions).save(target)


def write_csv(target: str, rows, duration_s: float, media: str | None) -> None:
    with open(target, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start_s", "end_s", "language", "confidence"])
        for row in rows.itertuples():
            writer.writerow([f"{row.start_s:.3f}", f"{row.end_s:.3f}", _label(row), f"{row.confidence:.4f}"])


WRITERS = {AnnotationFormat.eaf: write_eaf, AnnotationFormat.textgrid: write_textgrid,
           AnnotationFormat.vtt: write_vtt, AnnotationFormat.csv: write_csv}
