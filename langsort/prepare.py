"""`langsort prepare`: every file of a corpus -> speech clips -> spectrogram grids in Parquet.

Clips come from langsort.clips (the extractor `label` uses too); `assemble` turns a file's
spans, as recorded and in perturbed copies, into its rows. The Ray layer (`prepare`) probes
files in parallel, cuts long recordings into spans of `span_seconds` so no recording becomes
one giant task, packs short ones together, and streams finished files into Parquet as their
tasks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from langsort import __version__, audio, manifest
from langsort.clips import ClipConfig, SpanResult, SpanWork, cut_spans, file_status, probe_files
from langsort.corpus import InputFile, discover, labels_of
from langsort.features import SpectrogramParams, grid_to_png
from langsort.runtime import stderr_hidden
from langsort.segment import SegmentParams

PREPARED_META = "prepared.json"


@dataclass(frozen=True)
class ExtraRecording:
    """A labelled recording from outside the LABELLED tree (a reviewer's decision, see
    langsort.reviews, or a pseudo-label, see langsort.selftrain): the whole file (windows
    None) or only the given stretches."""

    file: InputFile
    windows: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class PrepareConfig(ClipConfig):
    augment: int = 0  # perturbed copies per labelled recording (training data)

    @classmethod
    def of_prepared(cls, meta: dict) -> "PrepareConfig":
        """The configuration a prepared dataset was made with (its prepared.json), to prepare
        more recordings the same way."""
        return cls(spectrogram=SpectrogramParams.from_dict(meta["spectrogram"]), segment=SegmentParams(**meta["segment"]),
                   augment=meta["augment"], seed=meta["seed"])


def plan_spans(file: InputFile, info: audio.AudioInfo, config: PrepareConfig,
               windows: tuple[tuple[float, float], ...] | None = None) -> list[SpanWork]:
    """Work spans over the whole file, or over only `windows` (stretches a reviewer labelled)."""
    copies = range(config.augment + 1) if file.label is not None else range(1)
    windows = [(s, min(e, info.duration_s)) for s, e in windows] if windows else [(0.0, info.duration_s)]
    return [
        SpanWork(file, first + start, first + end, copy)
        for copy in copies
        for first, last in windows if last > first
        for start, end in audio.spans(last - first, config.span_seconds)
    ]


def assemble(
    file: InputFile, info: audio.AudioInfo | None, error: str | None, results: list[SpanResult],
    config: PrepareConfig,
) -> tuple[dict, list[dict]]:
    """A file's row and its clip rows (clip_index in time order per copy)."""
    row = dict(path=file.path, label=file.label, duration_s=info.duration_s if info else None,
               sample_rate=info.sample_rate if info else None, channels=info.channels if info else None)
    errors = [r.error for r in results if r.error and r.copy == 0]
    error = error or (errors[0] if errors else None)
    clip_rows = []
    for copy in sorted({r.copy for r in results}):
        spans = sorted((r for r in results if r.copy == copy), key=lambda r: r.start_s)
        clips = [c for r in spans for c in r.clips]
        clip_rows += [
            dict(path=file.path, label=file.label, augment=copy, clip_index=i, start_s=s, end_s=e, grid=g)
            for i, (s, e, g) in enumerate(clips)
        ]
    n_clips = sum(1 for c in clip_rows if c["augment"] == 0)
    originals = [r for r in results if r.copy == 0]
    status, reason = file_status(error, n_clips, info, max((r.longest_dropped_s for r in originals), default=0.0),
                                 sum(r.not_speech_clips for r in originals), config)
    row = {**row, "status": status, "n_clips": n_clips, "error": reason}
    return row, clip_rows if status == manifest.STATUS_OK else []


# --------------------------------------------------------------------------------------
# Ray layer


@dataclass
class PrepareSummary:
    out_dir: str
    files: int
    ok: int
    unknown: int
    errors: int
    clips: int
    audio_seconds: float
    labels: list[str]


def prepare(
    input_root: str | None,
    out_dir: str,
    config: PrepareConfig = PrepareConfig(),
    labelled: bool = True,
    save_png: bool = False,
    progress: bool = True,
    extra: list[ExtraRecording] = (),
) -> PrepareSummary:
    """Prepare a corpus with Ray tasks; writes files.parquet, clips.parquet, prepared.json.
    `extra` adds recordings from elsewhere: people's decisions in `langsort review`
    (reviews.training_inputs) or pseudo-labels (selftrain); with no `input_root`, only those."""
    import ray

    from langsort.progress import progress_bar

    files = (discover(input_root, labelled=labelled) if input_root else []) + [r.file for r in extra]
    windows = {r.file.path: r.windows for r in extra}
    probe_remote = ray.remote(num_cpus=1)(_probe_files)
    prepare_remote = ray.remote(num_cpus=1)(_cut_spans)

    refs = [probe_remote.remote(batch) for batch in _chunks(files, 32)]  # all submitted before the first get
    probes = {p.file.path: (p.info, p.error) for ref in refs for p in ray.get(ref)}

    works = [w for f in files if probes[f.path][0]
             for w in plan_spans(f, probes[f.path][0], config, windows.get(f.path))]
    pending_spans = defaultdict(int)
    for work in works:
        pending_spans[work.file.path] += 1
    by_path = {f.path: f for f in files}
    results: dict[str, list[SpanResult]] = defaultdict(list)
    file_rows: list[dict] = []
    for file in files:  # files that gave no work are finished already
        if not pending_spans[file.path]:
            file_rows.append(assemble(file, *probes[file.path], [], config)[0])

    png_dir = os.path.join(out_dir, "png")
    clips_path = os.path.join(out_dir, manifest.CLIPS_NAME)
    total_audio = sum((w.end_s - w.start_s) for w in works)
    with manifest.AtomicParquetWriter(clips_path, manifest.PREPARED_CLIPS_SCHEMA) as writer, \
            progress_bar("prepare", total_audio, unit="audio s", enabled=progress) as advance:
        tasks = {prepare_remote.remote(batch, config): batch for batch in _pack(works, config.span_seconds)}
        while tasks:
            done, _ = ray.wait(list(tasks), num_returns=1)
            batch = tasks.pop(done[0])
            for result in ray.get(done[0]):
                results[result.path].append(result)
                pending_spans[result.path] -= 1
                if pending_spans[result.path] == 0:
                    file = by_path[result.path]
                    row, clip_rows = assemble(file, *probes[file.path], results.pop(result.path), config)
                    file_rows.append(row)
                    writer.write(manifest.table(clip_rows, manifest.PREPARED_CLIPS_SCHEMA))
                    if save_png:
                        _save_pngs(clip_rows, png_dir, config.spectrogram)
            advance(sum(w.end_s - w.start_s for w in batch))
        clip_count = writer.rows

    file_rows.sort(key=lambda r: r["path"])
    manifest.write_atomic(manifest.table(file_rows, manifest.PREPARED_FILES_SCHEMA),
                          os.path.join(out_dir, manifest.FILES_NAME))
    summary = PrepareSummary(
        out_dir=out_dir, files=len(file_rows),
        ok=sum(r["status"] == manifest.STATUS_OK for r in file_rows),
        unknown=sum(r["status"] == manifest.STATUS_UNKNOWN for r in file_rows),
        errors=sum(r["status"] == manifest.STATUS_ERROR for r in file_rows),
        clips=clip_count, audio_seconds=sum(r["duration_s"] or 0.0 for r in file_rows),
        labels=labels_of([by_path[r["path"]] for r in file_rows if r["status"] == manifest.STATUS_OK]),
    )
    write_meta(out_dir, config, summary)
    return summary


def _probe_files(files: list[InputFile]) -> list:
    with stderr_hidden():
        return probe_files(files)


def _cut_spans(works: list[SpanWork], config: PrepareConfig) -> list[SpanResult]:
    with stderr_hidden():
        return cut_spans(works, config)


def write_meta(out_dir: str, config: PrepareConfig, summary: PrepareSummary) -> None:
    meta = dict(
        langsort_version=__version__, spectrogram=config.spectrogram.to_dict(),
        segment=asdict(config.segment), augment=config.augment, seed=config.seed,
        labels=summary.labels, summary=asdict(summary),
    )
    tmp = os.path.join(out_dir, f".{PREPARED_META}.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, PREPARED_META))


def read_meta(prepared_dir: str) -> dict:
    with open(os.path.join(prepared_dir, PREPARED_META)) as f:
        return json.load(f)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _pack(works: list[SpanWork], seconds: float) -> list[list[SpanWork]]:
    """Group spans into tasks of about `seconds` of audio: many short files share a task."""
    batches, current, current_s = [], [], 0.0
    for work in works:
        if current and current_s + (work.end_s - work.start_s) > seconds:
            batches.append(current)
            current, current_s = [], 0.0
        current.append(work)
        current_s += work.end_s - work.start_s
    return batches + ([current] if current else [])


def _save_pngs(clip_rows: list[dict], png_dir: str, spec: SpectrogramParams) -> None:
    for clip in clip_rows:
        name = hashlib.sha1(clip["path"].encode()).hexdigest()[:8]
        stem = os.path.splitext(os.path.basename(clip["path"]))[0]
        target = os.path.join(png_dir, clip["label"] or "_", f"{stem}-{name}-a{clip['augment']}-{clip['clip_index']:04d}.png")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        grid = np.frombuffer(clip["grid"], np.uint8).reshape(spec.grid_shape)
        grid_to_png(grid, target)
