"""`langsort label`: every file and clip of an archive labelled by an ONNX model, into the
Parquet manifests of SPEC.md.

Pure pieces: `OnnxPredictor` (a Ray-agnostic callable: loads the session once, labels a
batch of clip rows) and `file_row`/`clip_rows` (clip probabilities -> one decision per file,
see langsort.aggregate). The Ray layer (`label`) streams: a Ray task pass hashes and probes
files (content identity for resuming), Ray Data cuts spans into clips and spectrograms and
runs ONNX Runtime on them (on CPU both steps share one actor per CPU), and the driver
commits finished files in small atomic parts. The final manifests are rebuilt from the
parts, sorted, so a re-run over the same input and model gives identical files and a
killed run loses only uncommitted files.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from langsort import aggregate, audio, manifest, storage
from langsort.corpus import InputFile, discover
from langsort.export import ModelFileError, ModelInfo, read_model_info
from langsort.features import SpectrogramParams
from langsort.prepare import PrepareConfig, SpanWork, no_clip_reason, prepare_spans, probe_file
from langsort.segment import SegmentParams

STATE_DIR = ".langsort"  # inside MANIFESTS: committed parts of unfinished or earlier runs
DEFAULT_THRESHOLD = 0.6
SPANS_PER_TASK = 64  # at most: bounded task outputs and little work lost with a killed worker
SPANS_PER_CALL = 8  # spans whose clips share one speech-check batch (short files give a few clips each)


class OnnxPredictor:
    """Ray Data batch callable: pandas rows with a `grid` column -> rows with p_<label>.

    Rows that are not clips (span markers) pass through with null probabilities. Knows
    nothing of Ray, so it runs the same in a test or an actor. It reads the model file
    itself, so 14 MB of model bytes do not travel through the object store to every actor,
    and a file replaced mid-run is refused by its hash.
    """

    def __init__(self, model: ModelInfo, threads: int = 1):
        import onnxruntime as ort

        model_bytes = storage.read_bytes(model.path)
        if hashlib.sha256(model_bytes).hexdigest() != model.sha256:
            raise ModelFileError(f"{model.path} changed while labelling: run label again")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle ONNX threads must sleep, not spin: decoding, in this actor and others, needs those cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.labels, self.grid_shape = model.labels, model.grid_shape

    def predict(self, grids: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: grids.astype(np.float32, copy=False)})[0]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        is_clip = batch.kind.eq("clip").to_numpy()
        probs = np.full((len(batch), len(self.labels)), np.nan)
        if is_clip.any():
            grids = np.stack([np.frombuffer(g, np.uint8).reshape(self.grid_shape) for g in batch.grid[is_clip]])
            probs[is_clip] = self.predict(grids)
        out = batch.drop(columns=["grid"])
        for i, label in enumerate(self.labels):
            out[manifest.prob_column(label)] = probs[:, i]
        return out


# rows from decoding to inference: clips (with their grid) and one marker
# per span that says how many clips it gave, or why it failed
SPAN_ROWS = pa.schema([
    ("path", pa.string()), ("span_index", pa.int64()), ("kind", pa.string()), ("start_s", pa.float64()),
    ("end_s", pa.float64()), ("grid", pa.binary()), ("error", pa.string()), ("longest_dropped_s", pa.float64()),
    ("not_speech_clips", pa.int64()), ("span_clips", pa.int64()),
])


def span_rows(items: list[dict], config: PrepareConfig) -> list[dict]:
    """Span work items -> their clip rows plus one marker row per span."""
    works = [SpanWork(InputFile(i["source"], i["path"]), i["start_s"], i["end_s"]) for i in items]
    rows = []
    for item, work, result in zip(items, works, prepare_spans(works, config)):
        base = dict(path=work.file.path, span_index=item["index"])
        rows += [dict(base, kind="clip", start_s=s, end_s=e, grid=g, error=None, longest_dropped_s=0.0,
                      not_speech_clips=0, span_clips=0) for s, e, g in result.clips]
        rows.append(dict(base, kind="span", start_s=work.start_s, end_s=work.end_s, grid=None, error=result.error,
                         longest_dropped_s=result.longest_dropped_s, not_speech_clips=result.not_speech_clips,
                         span_clips=len(result.clips)))
    return rows


@dataclass
class Probe:
    file: InputFile
    sha256: str | None
    info: audio.AudioInfo | None
    error: str | None


def probe_and_hash(file: InputFile) -> Probe:
    """Content identity (sha256 of the bytes) and the header; never raises."""
    info, error = probe_file(file)
    digest = None
    if not file.error:
        try:
            digest = storage.sha256_of(file.source)
        except OSError as exc:
            error = error or f"cannot read: {exc.strerror or exc}"
    return Probe(file, digest, info, error)


def file_row(probe: Probe, clips: list[dict], spans: list[dict], model: ModelInfo, segment: SegmentParams,
             threshold: float) -> dict:
    """The files.parquet row for one file from its clip rows (with p_ columns) and span markers."""
    labels = model.labels
    row = dict(path=probe.file.path, duration_s=probe.info.duration_s if probe.info else None,
               n_clips=len(clips), model_sha256=model.sha256, language=None, confidence=None, error=None,
               **{manifest.prob_column(label): None for label in labels})
    span_errors = [s["error"] for s in spans if s["error"]]
    if probe.error or span_errors:
        return dict(row, status=manifest.STATUS_ERROR, error=probe.error or span_errors[0], n_clips=0)
    if not clips:
        longest = max((s["longest_dropped_s"] for s in spans), default=0.0)
        reason = no_clip_reason(probe.info, longest, sum(s["not_speech_clips"] for s in spans), segment)
        return dict(row, status=manifest.STATUS_UNKNOWN, error=reason)
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


def _probabilities(clips: list[dict], labels: list[str]) -> np.ndarray:
    columns = [manifest.prob_column(label) for label in labels]
    return np.array([[clip[c] for c in columns] for clip in clips], dtype=np.float64).reshape(len(clips), len(labels))


# --------------------------------------------------------------------------------------
# Committed parts: the resumable state of a label run


def _part_schema(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field("content_sha256", pa.string()))


class PartStore:
    """Finished files are committed in parts: a clips part, then the files part that makes
    them count. Parts are atomic; a file is done once its row is in a files part."""

    def __init__(self, manifests_dir: str, model: ModelInfo):
        self.dir = storage.join(manifests_dir, STATE_DIR, "parts")
        self.model = model
        self.files_schema = _part_schema(manifest.label_files_schema(model.labels))
        self.clips_schema = _part_schema(manifest.label_clips_schema(model.labels))

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(files, clips) committed earlier by this model, in commit order."""
        files = self._read("files-", self.files_schema)
        clips = self._read("clips-", self.clips_schema)
        files = files[files.model_sha256 == self.model.sha256]
        clips = clips[clips.model_sha256 == self.model.sha256]
        return files, clips

    def commit(self, file_rows: list[dict], clip_rows_: list[dict]) -> None:
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        manifest.write_atomic(manifest.table(clip_rows_, self.clips_schema), storage.join(self.dir, f"clips-{stamp}.parquet"))
        manifest.write_atomic(manifest.table(file_rows, self.files_schema), storage.join(self.dir, f"files-{stamp}.parquet"))

    def _read(self, prefix: str, schema: pa.Schema) -> pd.DataFrame:
        """Parts of this model's schema (parts of models with other labels are skipped)."""
        tables = [manifest.read(p) for p in storage.glob_names(self.dir, prefix, ".parquet")]
        tables = [t for t in tables if t.schema.equals(schema, check_metadata=False)]
        return (pa.concat_tables(tables) if tables else schema.empty_table()).to_pandas()


# --------------------------------------------------------------------------------------
# Ray layer


@dataclass
class LabelSummary:
    manifests: str
    files: int
    labelled_now: int
    reused: int
    counts: dict = field(default_factory=dict)  # status/language -> files
    seconds: float = 0.0


def label(
    input_root: str, model_path: str, manifests_dir: str, threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 32, progress: bool = True,
) -> LabelSummary:
    import ray
    from ray.data import ActorPoolStrategy

    from langsort.progress import progress_bar
    from langsort.runtime import cluster_cpus

    started = time.perf_counter()
    model = read_model_info(storage.absolute(model_path))  # the ONNX actors read it, from any directory
    spec = SpectrogramParams.from_dict(model.meta["spectrogram"])
    segment = SegmentParams(**model.meta["segment"])
    config = PrepareConfig(spectrogram=spec, segment=segment)
    files = discover(input_root)
    store = PartStore(manifests_dir, model)
    done_files, done_clips = store.load()
    done_by_sha = {sha: path for path, sha in zip(done_files.path, done_files.content_sha256) if sha}

    remote = storage.ray_options(input_root, model_path, manifests_dir)
    probe_remote = ray.remote(num_cpus=1)(_probe_batch).options(**remote)
    batches = [files[i : i + 32] for i in range(0, len(files), 32)]
    probes = [p for ref in [probe_remote.remote(b) for b in batches] for p in ray.get(ref)]

    reused_files, reused_clips, todo = [], [], []
    for probe in probes:
        previous = done_by_sha.get(probe.sha256) if probe.sha256 else None
        if previous is not None:
            old = done_files[done_files.path == previous].iloc[-1].to_dict()
            reused_files.append(dict(old, path=probe.file.path))
            reused_clips += [dict(c, path=probe.file.path) for c in
                             done_clips[done_clips.path == previous].to_dict("records")]
        else:
            todo.append(probe)

    works, span_count = [], {}
    pending: dict[str, Probe] = {}
    finished_rows: list[tuple[dict, list[dict]]] = []
    for probe in todo:
        if probe.info is None or probe.error:
            finished_rows.append((file_row(probe, [], [], model, segment, threshold), []))
            continue
        spans = audio.spans(probe.info.duration_s, config.span_seconds)
        span_count[probe.file.path] = len(spans)
        pending[probe.file.path] = probe
        works += [dict(index=i, start_s=s, end_s=e, source=probe.file.source, path=probe.file.path)
                  for i, (s, e) in enumerate(spans)]

    # Decoding and inference each ask for one CPU, so Ray Data fuses them: one actor per
    # CPU decodes its spans and labels their clips with a single-threaded ONNX session.
    # Measured on 2 cores (8 h archive): as separate stages, a 1-CPU inference actor
    # beside half-CPU decode tasks left 12-15 % of the CPU idle: one stage waited on the
    # other, and Ray Data kept 1.5 of the 2 CPUs for itself once its resource
    # reservation dropped the fractional half CPU. Fused: under 2 % idle, ~550x instead
    # of ~500x.
    cpus = cluster_cpus()
    new_files = 0
    committed = [0]

    def commit(rows: list[tuple[dict, list[dict]]]) -> None:
        if not rows:
            return
        sha = {p.file.path: p.sha256 for p in todo}
        store.commit([dict(r, content_sha256=sha.get(r["path"])) for r, _ in rows],
                     [dict(c, content_sha256=sha.get(c["path"])) for _, cs in rows for c in cs])
        committed[0] += len(rows)

    commit(finished_rows)
    new_files += len(finished_rows)
    with progress_bar("label", len(pending), unit="files", enabled=progress) as advance:
        if works:
            dataset = (
                ray.data.from_items(works, override_num_blocks=max(8 * cpus, math.ceil(len(works) / SPANS_PER_TASK)))
                .map_batches(_SpanClips(config), batch_format="pandas", batch_size=SPANS_PER_CALL,
                             num_cpus=1, **remote)
                .map_batches(
                    OnnxPredictor, batch_format="pandas", batch_size=batch_size,
                    fn_constructor_args=(model,),
                    compute=ActorPoolStrategy(size=cpus), num_cpus=1, **remote,
                )
            )
            arrivals = Arrivals(span_count)
            buffer, last_commit = [], time.monotonic()
            for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                for row in batch.to_pylist():
                    path = arrivals.add(row)
                    if path is not None:
                        clips, spans = arrivals.pop(path)
                        buffer.append((file_row(pending.pop(path), clips, spans, model, segment, threshold),
                                       clip_rows(path, clips, model)))
                        advance(1)
                if len(buffer) >= 64 or (buffer and time.monotonic() - last_commit > 5.0):
                    commit(buffer)
                    new_files += len(buffer)
                    buffer, last_commit = [], time.monotonic()
            commit(buffer)
            new_files += len(buffer)

    summary = write_manifests(manifests_dir, store, [p.file.path for p in probes], reused_files, reused_clips)
    record_run(manifests_dir, input_root, model_path, threshold)
    summary.labelled_now, summary.reused = new_files, len(reused_files)
    summary.seconds = time.perf_counter() - started
    return summary


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


def _probe_batch(files: list[InputFile]) -> list[Probe]:
    return [probe_and_hash(f) for f in files]


class _SpanClips:
    """Ray Data map_batches: span work items -> clip rows and span markers."""

    def __init__(self, config: PrepareConfig):
        self.config = config

    def __call__(self, items: pd.DataFrame) -> pa.Table:
        return pa.Table.from_pylist(span_rows(items.to_dict("records"), self.config), schema=SPAN_ROWS)


def write_manifests(manifests_dir: str, store: PartStore, paths: list[str], reused_files: list[dict],
                    reused_clips: list[dict]) -> LabelSummary:
    """files.parquet and clips.parquet for exactly the current input files, from the parts."""
    files, clips = store.load()
    if reused_files:
        files = pd.concat([files, pd.DataFrame(reused_files)], ignore_index=True)
        clips = pd.concat([clips, pd.DataFrame(reused_clips)], ignore_index=True) if reused_clips else clips
    wanted = set(paths)
    files = files[files.path.isin(wanted)].drop_duplicates("path", keep="last").sort_values("path")
    shas = dict(zip(files.path, files.content_sha256))
    clips = clips[clips.path.map(shas).eq(clips.content_sha256) & clips.path.isin(wanted)]
    clips = clips.drop_duplicates(["path", "clip_index"], keep="last").sort_values(["path", "clip_index"])
    files_schema = manifest.label_files_schema(store.model.labels)
    clips_schema = manifest.label_clips_schema(store.model.labels)
    for frame, schema, name in ((files, files_schema, manifest.FILES_NAME), (clips, clips_schema, manifest.CLIPS_NAME)):
        records = frame[schema.names].astype(object).where(frame[schema.names].notna(), None).to_dict("records")
        manifest.write_atomic(manifest.table(records, schema), storage.join(manifests_dir, name))
    counts = files.status.value_counts().to_dict()
    counts.update({f"language:{k}": v for k, v in files.language.value_counts().to_dict().items()})
    return LabelSummary(manifests=manifests_dir, files=len(files), labelled_now=0, reused=0, counts=counts)


def record_run(manifests_dir: str, input_root: str, model_path: str, threshold: float) -> None:
    """Remember what was labelled, so `sort` finds the archive without being told."""
    import json

    from langsort.sort import RUN_FILE

    run = dict(input_root=storage.absolute(input_root), model=storage.absolute(model_path), threshold=threshold)
    storage.write_bytes_atomic(storage.join(manifests_dir, RUN_FILE), json.dumps(run, indent=2).encode())
