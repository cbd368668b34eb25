"""`langsort prepare`: every file of a corpus -> speech clips -> spectrogram grids in Parquet.

Pure core: `prepare_spans` turns spans of recordings into clips (decode in blocks -> log-mel
-> loudness mask -> clip boundaries -> grids -> one batched speech check for all of them)
and `assemble` turns a file's spans into its rows. The Ray layer (`prepare`) probes files in
parallel, cuts long recordings into spans of `span_seconds` so no recording becomes one
giant task, packs short ones together, and streams finished files into Parquet as their
tasks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from langsort import __version__, audio, augment, manifest, storage, voice
from langsort.corpus import InputFile, discover, labels_of
from langsort.features import LogMelStream, SpectrogramParams, clip_grid, grid_to_png
from langsort.reviews import ReviewedRecording
from langsort.segment import ClipCutter, SegmentParams, speech_mask

PREPARED_META = "prepared.json"
VOICE_BATCH = 32  # clips voice-checked at a time: enough to batch the VAD, little audio held


@dataclass(frozen=True)
class PrepareConfig:
    spectrogram: SpectrogramParams = SpectrogramParams()
    segment: SegmentParams = SegmentParams()
    span_seconds: float = 600.0  # longest piece of one recording handled by one task
    block_seconds: float = 10.0  # audio decoded at a time (small blocks reuse memory); noise-floor window
    augment: int = 0  # perturbed copies per labelled recording (training data)
    seed: int = 0


@dataclass
class SpanWork:
    file: InputFile
    start_s: float
    end_s: float
    copy: int = 0  # 0: as recorded; k > 0: k-th perturbed copy


@dataclass
class SpanResult:
    path: str
    copy: int
    start_s: float
    clips: list[tuple[float, float, bytes]] = field(default_factory=list)  # start_s, end_s, grid
    longest_dropped_s: float = 0.0
    not_speech_clips: int = 0  # loud clips the voice check rejected (music, noise)
    error: str | None = None


def copy_seed(seed: int, path: str, copy: int) -> int:
    """Stable per (recording, copy), whichever worker runs it."""
    return zlib.crc32(f"{seed}:{copy}:{path}".encode("utf-8", "surrogateescape"))


class SpeechCheck:
    """Cut clips wait here until VOICE_BATCH of them, from one span or several, can be
    voice-checked in one VAD batch (voice.speech_shares); each then lands in its span's
    result as a clip or as a rejected non-speech clip. Short files give a few clips each,
    so batching across spans is what makes the batches full."""

    def __init__(self, config: PrepareConfig):
        self.min_share = config.segment.min_speech_share
        self.sample_rate = config.spectrogram.sample_rate
        self.waiting: list[tuple[SpanResult, float, float, bytes, np.ndarray | None]] = []

    @property
    def enabled(self) -> bool:
        return self.min_share > 0

    def add(self, result: SpanResult, start_s: float, end_s: float, grid: bytes, excerpt: np.ndarray | None) -> None:
        self.waiting.append((result, start_s, end_s, grid, excerpt))
        if len(self.waiting) >= VOICE_BATCH:
            self.flush()

    def flush(self) -> None:
        excerpts = [w[4] for w in self.waiting]
        shares = voice.speech_shares(excerpts, self.sample_rate) if self.enabled else [1.0] * len(excerpts)
        for (result, start_s, end_s, grid, _), share in zip(self.waiting, shares):
            if share >= self.min_share:
                result.clips.append((start_s, end_s, grid))
            else:
                result.not_speech_clips += 1
        self.waiting.clear()


def prepare_spans(works: list[SpanWork], config: PrepareConfig) -> list[SpanResult]:
    """Clips of several spans, voice-checked together: what one Ray task runs."""
    speech = SpeechCheck(config)
    results = [_cut_span(work, config, speech) for work in works]
    speech.flush()
    return results


def prepare_span(work: SpanWork, config: PrepareConfig) -> SpanResult:
    """Clips of one span on its own (a file in a notebook or a test)."""
    return prepare_spans([work], config)[0]


def _cut_span(work: SpanWork, config: PrepareConfig, speech: SpeechCheck) -> SpanResult:
    """Clips of one span, handed to `speech` for checking: decoded block by block, so memory
    is bounded by the block and the open stretch of speech, not by the recording. The last
    clips are only in the result once the caller flushes `speech`."""
    spec = config.spectrogram
    result = SpanResult(path=work.file.path, copy=work.copy, start_s=work.start_s)
    perturbation = augment.draw(copy_seed(config.seed, work.file.path, work.copy)) if work.copy else None
    speed = perturbation.speed if perturbation else 1.0
    mel_stream = LogMelStream(spec)
    cutter = ClipCutter(config.segment, spec.frame_rate)
    # frames (and their samples and energies) from `held_start` on, until no clip can need them
    held = np.zeros((0, spec.n_mels), np.float32)
    held_energy = np.zeros(0, np.float32)
    held_audio = np.zeros(0, np.float32)
    held_start = 0
    excerpt_frames = max(1, round(config.segment.vad_excerpt_seconds * spec.frame_rate))

    def loudest_audio(first: int, last: int) -> np.ndarray | None:
        if not speech.enabled:
            return None
        start, end = voice.loudest_excerpt(held_energy[first - held_start : last - held_start], excerpt_frames)
        offset = (first - held_start) * spec.hop_length
        return held_audio[offset + start * spec.hop_length : offset + end * spec.hop_length].copy()

    def emit(bounds):
        for first, last in bounds:
            grid = clip_grid(held[first - held_start : last - held_start], spec)
            to_s = lambda frame: work.start_s + frame / spec.frame_rate * speed  # noqa: E731
            speech.add(result, to_s(first), to_s(last), grid.tobytes(), loudest_audio(first, last))

    try:
        blocks = audio.read_blocks(
            work.file.source, spec.sample_rate, work.start_s, work.end_s, config.block_seconds, speed
        )
        for block in blocks:
            if perturbation:
                block = perturbation.apply(block, spec.sample_rate)
            mel_db, energy_db = mel_stream.push(block)
            held = np.concatenate([held, mel_db])
            held_energy = np.concatenate([held_energy, energy_db])
            if speech.enabled:
                held_audio = np.concatenate([held_audio, block.astype(np.float32, copy=False)])
            emit(cutter.push(speech_mask(energy_db, config.segment)))
            keep_from = cutter.pending_start
            drop = keep_from - held_start
            held, held_energy, held_start = held[drop:], held_energy[drop:], keep_from
            held_audio = held_audio[drop * spec.hop_length :]
        emit(cutter.finish())
    except audio.AudioError as exc:
        result.error = str(exc)
    result.longest_dropped_s = cutter.longest_dropped / spec.frame_rate * speed
    return result


def probe_file(file: InputFile) -> tuple[audio.AudioInfo | None, str | None]:
    if file.error:
        return None, file.error
    try:
        if storage.size(file.source) == 0:
            return None, "empty file (0 bytes)"
    except OSError:
        pass  # the decoder reports why it cannot open it
    try:
        info = audio.probe(file.source)
    except audio.AudioError as exc:
        return None, str(exc)
    if info.duration_s <= 0:
        return None, "no audio samples"
    return info, None


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
    if error:
        return {**row, "status": manifest.STATUS_ERROR, "n_clips": n_clips, "error": error}, []
    if n_clips == 0:
        return {**row, "status": manifest.STATUS_UNKNOWN, "n_clips": 0,
                "error": no_clip_reason(info, max((r.longest_dropped_s for r in results if r.copy == 0), default=0.0),
                                        sum(r.not_speech_clips for r in results if r.copy == 0), config.segment)}, []
    return {**row, "status": manifest.STATUS_OK, "n_clips": n_clips, "error": None}, clip_rows


def no_clip_reason(info: audio.AudioInfo, longest_dropped_s: float, not_speech_clips: int,
                   segment: SegmentParams) -> str:
    """Why a readable file gave no clip: too short, not speech, speech too short, or silence."""
    minimum, longest = segment.min_seconds, longest_dropped_s
    if info.duration_s < minimum:
        return f"too short: {info.duration_s:.1f} s is below the {minimum:g} s minimum clip"
    if not_speech_clips:
        return "no speech found: the loud parts are music or other sounds, not speech"
    if longest > 0:
        return f"too short: longest stretch of speech is {longest:.1f} s, below the {minimum:g} s minimum clip"
    return "no speech found (silence or steady noise)"


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
    input_root: str,
    out_dir: str,
    config: PrepareConfig = PrepareConfig(),
    labelled: bool = True,
    save_png: bool = False,
    progress: bool = True,
    reviewed: list[ReviewedRecording] = (),
) -> PrepareSummary:
    """Prepare a corpus with Ray tasks; writes files.parquet, clips.parquet, prepared.json.
    `reviewed` adds recordings people labelled in `langsort review` (reviews.training_inputs)."""
    import ray

    from langsort.progress import progress_bar

    files = discover(input_root, labelled=labelled) + [r.file for r in reviewed]
    windows = {r.file.path: r.windows for r in reviewed}
    probe_remote = ray.remote(num_cpus=1)(_probe_batch)
    prepare_remote = ray.remote(num_cpus=1)(prepare_spans)

    batches = _chunks(files, 32)
    refs = [probe_remote.remote(batch) for batch in batches]  # all submitted before the first get
    probes: dict[str, tuple] = {}
    for batch, ref in zip(batches, refs):
        for file, probed in zip(batch, ray.get(ref)):
            probes[file.path] = probed

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


def _probe_batch(files: list[InputFile]):
    return [probe_file(f) for f in files]


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
