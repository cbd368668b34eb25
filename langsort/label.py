"""`langsort label`: every file and clip of an archive labelled by an ONNX model, into the
Parquet manifests of SPEC.md.

`label()` reads as four steps: plan (find and probe the files, hashing their content),
reuse (files whose content was labelled before by this model), run (spans cut into clips and
spectrograms with langsort.clips, labelled by langsort.predict's ONNX Runtime callable; one
worker per CPU does both), commit (the driver turns each finished file's rows into its
manifest rows, its language timeline included (langsort.timeline), and commits them in
small atomic parts, langsort.parts).
Plan and run go through an executor: Ray (tasks and Ray Data, on a cluster or an embedded
instance) or, for a small job with no cluster, a few worker processes of this machine, so
that labelling three short files does not wait many times their work for Ray to start.
Both run the same functions on the same rows: the manifests do not depend on the executor.
The manifests are rebuilt from the parts, sorted, so a re-run over the same input and model
gives identical files and a killed run loses only uncommitted files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from langsort import aggregate, audio, manifest, storage, timeline
from langsort.clips import CHANGED, ClipConfig, Probe, SpanWork, cut_spans, file_status, probe_files, unchanged
from langsort.corpus import InputFile, discover
from langsort.errors import LangsortError
from langsort.model import ModelInfo, read_model_info
from langsort.lock import ManifestLock
from langsort.parts import CONTENT_COLUMN, STATE_DIR, LabelSummary, PartStore, rebuild_manifests, record_run
from langsort.predict import OnnxPredictor

PROBES_PER_TASK = 32
SPANS_PER_TASK = 64  # at most: bounded task outputs and little work lost with a killed worker
SPANS_PER_CALL = 8  # spans whose clips share one speech-check batch (short files give a few clips each)
COMMIT_ROWS, COMMIT_SECONDS = 64, 5.0  # a part is committed at this many files or this long after the last
SHORT_SPEECH_SECONDS = 1.5  # a file with only this much speech is still labelled (see bench/short_files.py)
# a job is small, and labelled without Ray, when no cluster is named, Ray is not already running
# in this process, its files hold at most this many bytes (they are probed and hashed by local
# workers first) and then this much audio: Ray's start-up (5-20 s on 2 cores) is then much of the time
LOCAL_MAX_BYTES = 1 << 30
LOCAL_MAX_SECONDS = 2 * 3600.0
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # for local workers, as Ray sets

# rows from decoding to inference: clips (with their grid) and one marker
# per span that says how many clips it gave, or why it failed
SPAN_ROWS = pa.schema([
    ("path", pa.string()), ("span_index", pa.int64()), ("kind", pa.string()), ("start_s", pa.float64()),
    ("end_s", pa.float64()), ("grid", pa.binary()), ("error", pa.string()), ("longest_dropped_s", pa.float64()),
    ("not_speech_clips", pa.int64()), ("span_clips", pa.int64()), ("decoded_s", pa.float64()),
    ("pauses", pa.binary()),
])


def span_rows(items: list[dict], config: ClipConfig) -> list[dict]:
    """Span work items -> their clip rows (with the pauses inside each clip, for the
    timeline) plus one marker row per span."""
    works = [SpanWork(InputFile(i["source"], i["path"]), i["start_s"], i["end_s"]) for i in items]
    shape = config.spectrogram.grid_shape
    rows = []
    for item, work, result in zip(items, works, cut_spans(works, config)):
        base = dict(path=work.file.path, span_index=item["index"])
        rows += [dict(base, kind="clip", start_s=s, end_s=e, grid=g, error=None, longest_dropped_s=0.0,
                      not_speech_clips=0, span_clips=0, decoded_s=0.0,
                      pauses=timeline.pauses_in_grid(np.frombuffer(g, np.uint8).reshape(shape), s, e).tobytes())
                 for s, e, g in result.clips]
        rows.append(dict(base, kind="span", start_s=work.start_s, end_s=work.end_s, grid=None, error=result.error,
                         longest_dropped_s=result.longest_dropped_s, not_speech_clips=result.not_speech_clips,
                         span_clips=len(result.clips), decoded_s=result.decoded_s, pauses=None))
    return rows


def file_row(probe: Probe, clips: list[dict], spans: list[dict], model: ModelInfo, config: ClipConfig,
             threshold: float) -> dict:
    """The files.parquet row for one file from its clip rows (with p_ columns) and span markers."""
    labels = model.labels
    # the duration is what was decoded: a header can claim hours for a few seconds of audio
    info = dataclasses.replace(probe.info, duration_s=sum(s["decoded_s"] for s in spans)) if spans else probe.info
    row = dict(path=probe.file.path, duration_s=info.duration_s if info else None,
               n_clips=len(clips), model_sha256=model.sha256, language=None, confidence=None, error=None,
               **{manifest.prob_column(label): None for label in labels})
    span_errors = [s["error"] for s in spans if s["error"]]
    status, reason = file_status(
        probe.error or (span_errors[0] if span_errors else None), len(clips), info,
        max((s["longest_dropped_s"] for s in spans), default=0.0), sum(s["not_speech_clips"] for s in spans), config,
    )
    if status != manifest.STATUS_OK:
        return dict(row, status=status, error=reason, n_clips=0)
    probs = aggregate.file_probabilities(_probabilities(clips, labels),
                                         np.array([c["end_s"] - c["start_s"] for c in clips]))
    language, confidence = aggregate.decide(probs, labels, threshold)
    row.update({manifest.prob_column(label): float(p) for label, p in zip(labels, probs)}, confidence=confidence)
    if language is None:
        return dict(row, status=manifest.STATUS_UNKNOWN,
                    error=f"not confident: {confidence:.2f} is below the threshold {threshold:g}")
    return dict(row, status=manifest.STATUS_OK, language=language)


def clip_rows(path: str, clips: list[dict], model: ModelInfo) -> list[dict]:
    """The clips.parquet rows of one file, in time order."""
    ordered = sorted(clips, key=lambda c: c["start_s"])
    rows = []
    for index, (clip, p) in enumerate(zip(ordered, _probabilities(ordered, model.labels))):
        best = int(np.argmax(p))
        rows.append(dict(path=path, clip_index=index, start_s=float(clip["start_s"]), end_s=float(clip["end_s"]),
                         language=model.labels[best], confidence=float(p[best]), model_sha256=model.sha256,
                         **{manifest.prob_column(label): float(v) for label, v in zip(model.labels, p)}))
    return rows


def timeline_of(clips: list[dict], model: ModelInfo, params: timeline.TimelineParams) -> list[timeline.Segment]:
    """A file's language segments from its clips: per-column windows where the model gives
    them, else one window per clip; boundaries move to pauses inside clips or between them."""
    labels = model.labels
    windows, pauses = [], [np.zeros((0, 2))]
    for clip, p in zip(clips, _probabilities(clips, labels)):
        if clip.get("pauses") is not None:
            pauses.append(np.frombuffer(clip["pauses"], np.float64).reshape(-1, 2))
        if clip.get("columns") is not None:
            columns = np.frombuffer(clip["columns"], np.float32).reshape(-1, len(labels))
            windows += timeline.windows_of_clip(clip["start_s"], clip["end_s"], columns, model.meta.column_centres)
        else:
            windows.append((clip["start_s"], clip["end_s"], p))
    if not windows:
        return []
    starts, ends, probs = (np.array([w[k] for w in windows], np.float64) for k in range(3))
    return timeline.segments(starts, ends, probs, params, np.concatenate(pauses))


def with_timeline(row: dict, found: list[timeline.Segment], labels: list[str], min_share: float,
                  threshold: float) -> dict:
    """The file row with `languages` and `mixed`; a mixed file is ok with its dominant
    language. Only segments confident at `threshold` count: a file the model is unsure of
    (below the threshold as a whole) is not made `ok` and mixed by unsure stretches."""
    present = timeline.languages_present(timeline.language_shares(found, len(labels), threshold), labels, min_share)
    if not present and row["status"] == manifest.STATUS_OK:  # sure as a whole, though no stretch is on its own
        present = [row["language"]]
    row = dict(row, languages=present, mixed=len(present) > 1)
    if row["mixed"]:
        row.update(status=manifest.STATUS_OK, language=present[0], error=None,
                   confidence=row[manifest.prob_column(present[0])])
    return row


def segment_rows(path: str, found: list[timeline.Segment], model: ModelInfo, threshold: float) -> list[dict]:
    """The segments.parquet rows of one file; language is null where the segment's own
    confidence is below the threshold."""
    rows = []
    for index, segment in enumerate(found):
        confidence = float(segment.probabilities[segment.language])
        rows.append(dict(path=path, segment_index=index, start_s=segment.start_s, end_s=segment.end_s,
                         language=model.labels[segment.language] if confidence >= threshold else None,
                         confidence=confidence, model_sha256=model.sha256,
                         **{manifest.prob_column(label): float(v) for label, v in zip(model.labels, segment.probabilities)}))
    return rows


def _probabilities(clips: list[dict], labels: list[str]) -> np.ndarray:
    columns = [manifest.prob_column(label) for label in labels]
    return np.array([[clip[c] for c in columns] for clip in clips], dtype=np.float64).reshape(len(clips), len(labels))


class Arrivals:
    """Rows of files still in flight, in any order: a file is complete once all its span
    markers have arrived and as many clips as those markers announce."""

    def __init__(self, span_count: dict[str, int]):
        self.span_count = span_count
        self.clips: dict[str, list[dict]] = defaultdict(list)
        self.spans: dict[str, list[dict]] = defaultdict(list)

    def add(self, row: dict) -> str | None:
        """Files the row completes (its path), else None."""
        path = row["path"]
        (self.clips if row["kind"] == "clip" else self.spans)[path].append(row)
        spans = self.spans[path]
        if len(spans) == self.span_count[path] and len(self.clips[path]) == sum(s["span_clips"] for s in spans):
            return path
        return None

    def pop(self, path: str) -> tuple[list[dict], list[dict]]:
        """(clip rows, span markers) of a file, forgotten here."""
        return self.clips.pop(path, []), self.spans.pop(path)


class _SpanClips:
    """Ray Data map_batches: span work items -> clip rows and span markers."""

    def __init__(self, config: ClipConfig):
        self.config = config

    def __call__(self, items: pd.DataFrame) -> pa.Table:
        return pa.Table.from_pylist(span_rows(items.to_dict("records"), self.config), schema=SPAN_ROWS)


# --------------------------------------------------------------------------------------
# Executors: where plan's probes and run's spans are worked on


class RayExecutor:
    """Ray: probe tasks of PROBES_PER_TASK files, and a Ray Data pipeline over the spans.

    Decoding and inference each ask for one CPU, so Ray Data fuses them: one actor per CPU
    decodes its spans and labels their clips with a single-threaded ONNX session. As
    separate stages, a 1-CPU inference actor beside fractional decode tasks left CPU idle:
    one stage waited on the other, and Ray Data's reservation floors fractional CPUs.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus: int | None = None):
        from langsort.runtime import init_ray

        init_ray(address, cpus)  # nothing when the caller started Ray already

    def probe(self, files: list[InputFile], job: "Job") -> list[Probe]:
        import ray

        probe_remote = ray.remote(num_cpus=1)(probe_files).options(**job.ray_options)
        refs = [probe_remote.remote(files[i : i + PROBES_PER_TASK], True)
                for i in range(0, len(files), PROBES_PER_TASK)]
        return [p for ref in refs for p in ray.get(ref)]

    def labelled_rows(self, works: list[dict], job: "Job", batch_size: int) -> Iterator[dict]:
        import ray
        from ray.data import ActorPoolStrategy

        from langsort.runtime import cluster_cpus

        cpus = cluster_cpus()
        dataset = (
            ray.data.from_items(works, override_num_blocks=max(8 * cpus, math.ceil(len(works) / SPANS_PER_TASK)))
            .map_batches(_SpanClips(job.config), batch_format="pandas", batch_size=SPANS_PER_CALL, num_cpus=1,
                         **job.ray_options)
            .map_batches(OnnxPredictor, batch_format="pandas", batch_size=batch_size, fn_constructor_args=(job.model,),
                         compute=ActorPoolStrategy(size=cpus), num_cpus=1, **job.ray_options)
        )
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            yield from batch.to_pylist()

    def close(self) -> None:
        """Nothing: Ray stays up for whoever started it (this process, until it exits)."""


class LocalExecutor:
    """This machine without Ray, for small jobs: up to `cpus` worker processes probe the
    files and label their spans, each with its own single-threaded ONNX session as a Ray
    actor has. The workers' stderr goes nowhere, as Ray workers' does in a label run:
    decoder notes (libmpg123's resync lines, from probing too) would break the progress
    display, and every file's problem is reported as a row. close() ends the workers."""

    name = "local"

    def __init__(self, cpus: int | None = None):
        self.cpus = cpus or _usable_cpus()
        self._pool = None

    def probe(self, files: list[InputFile], job: "Job") -> list[Probe]:
        chunks = [files[i : i + PROBES_PER_TASK] for i in range(0, len(files), PROBES_PER_TASK)]
        futures = self._submit(probe_files, [(chunk, True) for chunk in chunks])
        return [p for chunk in self._results(futures, ordered=True) for p in chunk]

    def labelled_rows(self, works: list[dict], job: "Job", batch_size: int) -> Iterator[dict]:
        chunks = [works[i : i + SPANS_PER_CALL] for i in range(0, len(works), SPANS_PER_CALL)]
        futures = self._submit(_label_spans, [(chunk, job.config, job.model, batch_size) for chunk in chunks])
        for rows in self._results(futures, ordered=False):
            yield from rows

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _submit(self, function, calls: list[tuple]) -> list:
        """Futures of function(*args) for each args. Workers start as work is handed out (one
        for three files), spawned, not forked (this process has threads, pyarrow's and ONNX
        Runtime's, that a fork would copy mid-use), with one math-library thread each as Ray
        gives its workers: a worker per CPU whose numpy also started a thread per CPU spent
        half its time on the contention (twice the CPU for the same files)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.cpus, multiprocessing.get_context("spawn"),
                                             initializer=_quiet_worker)
        saved = {name: os.environ.get(name) for name in ONE_THREAD}
        os.environ.update({name: "1" for name, value in saved.items() if value is None})
        try:
            return [self._pool.submit(function, *args) for args in calls]
        finally:  # only the workers started here see them: this process's environment is as it was
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)

    @staticmethod
    def _results(futures: list, ordered: bool) -> Iterator:
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        try:
            for future in futures if ordered else as_completed(futures):
                yield future.result()
        except BrokenProcessPool:
            raise LangsortError("a local labelling worker process died (out of memory, or a calling script without "
                                "`if __name__ == '__main__':`): the files finished so far are kept") from None
        finally:  # an error or an interrupt: what has not started is dropped, not run to the end
            for future in futures:
                future.cancel()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (a container's share)
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def _quiet_worker() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


_predictors: dict[str, OnnxPredictor] = {}  # a local worker's ONNX session, by model hash


def _label_spans(items: list[dict], config: ClipConfig, model: ModelInfo, batch_size: int) -> list[dict]:
    """What a Ray Data batch goes through, in a local worker: spans -> clip rows and span
    markers -> probabilities, in inference batches of `batch_size` rows."""
    if model.sha256 not in _predictors:
        _predictors[model.sha256] = OnnxPredictor(model)
    predictor = _predictors[model.sha256]
    rows = _SpanClips(config)(pd.DataFrame(items)).to_pandas()
    return [row for i in range(0, len(rows), batch_size)
            for row in pa.Table.from_pandas(predictor(rows.iloc[i : i + batch_size].reset_index(drop=True)),
                                            preserve_index=False).to_pylist()]


def choose_executor(files: list[InputFile], input_root: str, executor: str, address: str | None,
                    cpus: int | None) -> RayExecutor | LocalExecutor:
    """`executor` "ray" or "local" as asked; "auto": local for what may be a small job (no
    cluster named, Ray not already started in this process, a local folder of at most
    LOCAL_MAX_BYTES), else Ray."""
    if executor == "local":
        return LocalExecutor(cpus)
    if executor == "auto" and _may_be_small(files, input_root, address):
        return LocalExecutor(cpus)
    return RayExecutor(address, cpus)


def _may_be_small(files: list[InputFile], input_root: str, address: str | None) -> bool:
    if address or os.environ.get("RAY_ADDRESS") or _ray_running():
        return False
    if storage.is_remote(input_root):
        return False
    total = 0
    for file in files:
        if file.error is None:
            try:
                total += os.path.getsize(file.source)
            except OSError:
                pass  # the probe says why
    return total <= LOCAL_MAX_BYTES


def _ray_running() -> bool:
    """Ray started (or connected) in this process already: its start-up is paid for."""
    ray = sys.modules.get("ray")  # not imported: not running, and importing it takes a second
    return ray is not None and ray.is_initialized()


@dataclass
class Job:
    """One label run's fixed inputs."""

    model: ModelInfo
    config: ClipConfig
    threshold: float
    timeline: timeline.TimelineParams
    store: PartStore
    ray_options: dict
    executor: RayExecutor | LocalExecutor | None = None

    def rows(self, probe: Probe, clips: list[dict], spans: list[dict]) -> dict[str, list[dict]]:
        """A finished file's manifest rows, per table, stamped with its content hash (an
        error row without it when the file changed since it was hashed)."""
        if not unchanged(probe):
            probe, clips, spans = Probe(probe.file, None, CHANGED), [], []
        stamp = {CONTENT_COLUMN: probe.sha256}
        path, labels = probe.file.path, self.model.labels
        found = timeline_of(clips, self.model, self.timeline) if clips else []
        file = with_timeline(file_row(probe, clips, spans, self.model, self.config, self.threshold),
                             found, labels, self.timeline.min_share, self.threshold)
        return {"files": [dict(file, **stamp)],
                "clips": [dict(c, **stamp) for c in clip_rows(path, clips, self.model)],
                "segments": [dict(s, **stamp) for s in segment_rows(path, found, self.model, self.threshold)]}


def label(
    input_root: str, model_path: str, manifests_dir: str, threshold: float = aggregate.DEFAULT_THRESHOLD,
    batch_size: int = 32, progress: bool = True, min_share: float = timeline.TimelineParams.min_share,
    executor: str = "ray", address: str | None = None, cpus: int | None = None,
) -> LabelSummary:
    """Label INPUT into MANIFESTS, one run at a time (ManifestsBusy otherwise). Temporary
    files that killed runs left behind are nobody's once the lock is held: removed first.

    `executor`: "ray" (Ray at `address`, or the one this process started, or an embedded
    one with `cpus`), "local" (worker processes of this machine, no Ray), or "auto" (what
    `langsort label` uses): local for a small job (see LOCAL_MAX_BYTES), else Ray. The
    manifests are the same either way. Local workers are spawned: as with multiprocessing,
    the calling script must keep its work under `if __name__ == "__main__":`, which is why
    Ray stays the default here.
    """
    if executor not in ("auto", "ray", "local"):
        raise ValueError(f"executor must be auto, ray or local, not {executor!r}")
    with ManifestLock(manifests_dir, STATE_DIR):
        for folder in (manifests_dir, storage.join(manifests_dir, STATE_DIR),
                       storage.join(manifests_dir, STATE_DIR, "parts")):
            storage.remove_temporaries(folder)
        return _label(input_root, model_path, manifests_dir, threshold, batch_size, progress, min_share,
                      executor, address, cpus)


def _label(input_root: str, model_path: str, manifests_dir: str, threshold: float, batch_size: int,
           progress: bool, min_share: float, executor: str, address: str | None, cpus: int | None) -> LabelSummary:
    started = time.perf_counter()
    model = read_model_info(storage.absolute(model_path))  # the ONNX workers read it, from any directory
    clip_config = ClipConfig(spectrogram=model.meta.spectrogram, segment=model.meta.segment,
                             short_speech_seconds=SHORT_SPEECH_SECONDS)
    job = Job(model, clip_config, threshold,
              timeline.TimelineParams(min_share=min_share), PartStore(manifests_dir, model),
              storage.ray_options(input_root, model_path, manifests_dir))

    files = discover(input_root)
    job.executor = choose_executor(files, input_root, executor, address, cpus)
    try:
        probes = plan(files, job)
        if executor == "auto" and job.executor.name == "local" and _audio_seconds(probes) > LOCAL_MAX_SECONDS:
            job.executor.close()  # more work than Ray's start-up: probed already, labelled on Ray
            job.executor = RayExecutor(address, cpus)
        reused, todo = reuse(probes, job.store)
        labelled_now = run(todo, job, batch_size, progress)
    finally:
        job.executor.close()

    summary = rebuild_manifests(job.store, [p.file.path for p in probes], reused)
    job.store.compact()
    record_run(manifests_dir, input_root, model_path, threshold)
    summary.labelled_now, summary.reused = labelled_now, len(reused["files"])
    summary.seconds = time.perf_counter() - started
    summary.executor = job.executor.name
    return summary


def _audio_seconds(probes: list[Probe]) -> float:
    return sum(p.info.duration_s for p in probes if p.info is not None and not p.error)


def plan(files: list[InputFile], job: Job) -> list[Probe]:
    """Every file probed and hashed, by the job's executor."""
    return job.executor.probe(files, job)


def reuse(probes: list[Probe], store: PartStore) -> tuple[dict[str, list[dict]], list[Probe]]:
    """(rows reused from files of the same content labelled earlier, probes still to label)."""
    done = store.load()
    done_files = done["files"]
    # an error row is never reused: the error may have been the file's moment, not its content
    done_by_sha = {sha: path for path, sha, status in zip(done_files.path, done_files[CONTENT_COLUMN], done_files.status)
                   if sha and status != manifest.STATUS_ERROR}
    reused, todo = {kind: [] for kind in store.schemas}, []
    for probe in probes:
        previous = done_by_sha.get(probe.sha256) if probe.sha256 else None
        if previous is None:
            todo.append(probe)
            continue
        reused["files"].append(dict(done_files[done_files.path == previous].iloc[-1].to_dict(), path=probe.file.path))
        for kind in ("clips", "segments"):
            rows = done[kind]
            reused[kind] += [dict(r, path=probe.file.path) for r in rows[rows.path == previous].to_dict("records")]
    return reused, todo


def run(todo: list[Probe], job: Job, batch_size: int, progress: bool) -> int:
    """Label the files to do and commit them as they finish; the number of files labelled."""
    from langsort.progress import progress_bar

    unreadable = [p for p in todo if p.info is None or p.error]
    commits = Commits(job.store)
    for probe in unreadable:
        commits.add(job.rows(probe, [], []))
    commits.flush()
    readable = {p.file.path: p for p in todo if p.info is not None and not p.error}
    with progress_bar("label", len(readable), unit="files", enabled=progress,
                      waiting="starting workers") as advance:
        if readable:
            for probe, clips, spans in _finished_files(readable, job, batch_size):
                commits.add(job.rows(probe, clips, spans))
                advance(1)
                commits.flush_when_due()
        commits.flush()
    return commits.files


def _finished_files(probes: dict[str, Probe], job: Job, batch_size: int):
    """(probe, clip rows with probabilities, span markers) of each file, as it completes."""
    span_count, works = {}, []
    for path, probe in probes.items():
        spans = audio.spans(probe.info.duration_s, job.config.span_seconds)
        span_count[path] = len(spans)
        works += [dict(index=i, start_s=s, end_s=e, source=probe.file.source, path=path)
                  for i, (s, e) in enumerate(spans)]
    arrivals = Arrivals(span_count)
    for row in job.executor.labelled_rows(works, job, batch_size):
        path = arrivals.add(row)
        if path is not None:
            yield (probes[path], *arrivals.pop(path))


class Commits:
    """Finished files' rows gathered into parts: every COMMIT_ROWS files, or COMMIT_SECONDS
    after the last part, so a kill loses little and S3 does not get a part per file."""

    def __init__(self, store: PartStore):
        self.store = store
        self.buffer: list[dict[str, list[dict]]] = []
        self.last = time.monotonic()
        self.files = 0

    def add(self, rows: dict[str, list[dict]]) -> None:
        self.buffer.append(rows)

    def flush_when_due(self) -> None:
        if len(self.buffer) >= COMMIT_ROWS or (self.buffer and time.monotonic() - self.last > COMMIT_SECONDS):
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.store.commit({kind: [r for rows in self.buffer for r in rows[kind]] for kind in self.store.schemas})
            self.files += len(self.buffer)
        self.buffer, self.last = [], time.monotonic()
