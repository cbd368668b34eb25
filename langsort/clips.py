"""A span of a recording -> speech clips and their spectrogram grids: the clip extractor
that `prepare` (training data) and `label` (inference) share, so both see the same clips.

Pure and Ray-agnostic: `probe` reads a file's header (and, for labelling, its content hash),
`cut_spans` decodes spans block by block -> log-mel -> loudness mask -> clip boundaries ->
grids -> one batched speech check, and `file_status` says what a file's clips amount to
(ok, unknown with a reason, error). The Ray layers live in prepare.py and label.py.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field

import numpy as np

from langsort import audio, augment, manifest, storage, voice
from langsort.corpus import InputFile
from langsort.features import LogMelStream, SpectrogramParams, clip_grid
from langsort.segment import ClipCutter, SegmentParams, speech_mask

VOICE_BATCH = 32  # clips voice-checked at a time: enough to batch the VAD, little audio held


@dataclass(frozen=True)
class ClipConfig:
    spectrogram: SpectrogramParams = SpectrogramParams()
    segment: SegmentParams = SegmentParams()
    span_seconds: float = 600.0  # longest piece of one recording handled by one task
    block_seconds: float = 10.0  # audio decoded at a time (small blocks reuse memory); noise-floor window
    seed: int = 0  # draws the perturbation of each (recording, copy)
    # labelling: a span with no clip but a stretch of speech at least this long gets that
    # stretch as one shorter clip (spots, announcements, one-sentence answers); 0: off, as
    # for training data, where clips keep the segment's minimum
    short_speech_seconds: float = 0.0

    @property
    def shortest_clip_s(self) -> float:
        """The shortest speech this configuration turns into a clip."""
        return self.short_speech_seconds or self.segment.min_seconds


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
    decoded_s: float = 0.0  # audio actually decoded: a header may claim more (or less)


def copy_seed(seed: int, path: str, copy: int) -> int:
    """Stable per (recording, copy), whichever worker runs it."""
    return zlib.crc32(f"{seed}:{copy}:{path}".encode("utf-8", "surrogateescape"))


class SpeechCheck:
    """Cut clips wait here until VOICE_BATCH of them, from one span or several, can be
    voice-checked in one VAD batch (voice.speech_shares); each then lands in its span's
    result as a clip or as a rejected non-speech clip. Short files give a few clips each,
    so batching across spans is what makes the batches full."""

    def __init__(self, config: ClipConfig):
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
        if self.enabled:
            shares = voice.speech_shares(excerpts, self.sample_rate, settle_at=self.min_share)
        else:
            shares = [1.0] * len(excerpts)
        for (result, start_s, end_s, grid, _), share in zip(self.waiting, shares):
            if share >= self.min_share:
                result.clips.append((start_s, end_s, grid))
            else:
                result.not_speech_clips += 1
        self.waiting.clear()


def cut_spans(works: list[SpanWork], config: ClipConfig) -> list[SpanResult]:
    """Clips of several spans, voice-checked together: what one Ray task (or one call of
    label's decoding stage) runs."""
    speech = SpeechCheck(config)
    results = [_cut_span(work, config, speech) for work in works]
    speech.flush()
    short = [i for i, r in enumerate(results) if _only_short_speech(r, config)]
    if short:
        segment = dataclasses.replace(config.segment, min_seconds=config.short_speech_seconds)
        shorter = cut_spans([works[i] for i in short], dataclasses.replace(config, segment=segment,
                                                                          short_speech_seconds=0.0))
        for i, result in zip(short, shorter):
            if result.clips:
                results[i] = result
    return results


def _only_short_speech(result: SpanResult, config: ClipConfig) -> bool:
    """No clip, only because the longest stretch of speech was below the minimum clip."""
    return (config.short_speech_seconds > 0 and not result.clips and not result.error
            and not result.not_speech_clips and result.longest_dropped_s >= config.short_speech_seconds)


def _cut_span(work: SpanWork, config: ClipConfig, speech: SpeechCheck) -> SpanResult:
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
            result.decoded_s += len(block) / spec.sample_rate * speed
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


def no_clip_reason(info: audio.AudioInfo, longest_dropped_s: float, not_speech_clips: int, minimum: float) -> str:
    """Why a readable file gave no clip: too short, not speech, speech too short, or silence."""
    longest = longest_dropped_s
    if info.duration_s < minimum:
        return f"too short: {info.duration_s:.1f} s is below the {minimum:g} s minimum clip"
    if not_speech_clips:
        return "no speech found: the loud parts are music or other sounds, not speech"
    if longest > 0:
        return f"too short: longest stretch of speech is {longest:.1f} s, below the {minimum:g} s minimum clip"
    return "no speech found (silence or steady noise)"


CHANGED = "changed while being labelled: run label again"


@dataclass
class Probe:
    """What the header says about a file, and its content identity when asked for."""

    file: InputFile
    info: audio.AudioInfo | None
    error: str | None
    sha256: str | None = None
    stamp: tuple | None = None  # storage.stamp when hashed: the hash holds while this does


def probe(file: InputFile, hash_content: bool = False) -> Probe:
    """Header (and sha256 of the bytes, for resuming); never raises."""
    if file.error:
        return Probe(file, None, file.error)
    info, error = None, None
    try:
        empty = storage.size(file.source) == 0
    except OSError:
        empty = False  # the decoder reports why it cannot open it
    if empty:
        error = "empty file (0 bytes)"
    else:
        try:
            info = audio.probe(file.source)
            if info.duration_s <= 0:
                info, error = None, "no audio samples"
        except audio.AudioError as exc:
            error = str(exc)
    digest = stamp = None
    if hash_content:
        try:
            stamp = storage.stamp(file.source)
            digest = storage.sha256_of(file.source)
        except OSError as exc:
            error = error or f"cannot read: {exc.strerror or exc}"
        if digest and storage.stamp(file.source) != stamp:
            info, error, digest = None, CHANGED, None
    return Probe(file, info, error, digest, stamp)


def unchanged(probe: Probe) -> bool:
    """The file is still what was hashed (size, mtime, inode), so its rows may carry the
    hash: a file rewritten or deleted mid-run must not pin the new content's label (or a
    read error) to the old content for good."""
    return probe.stamp is None or storage.stamp(probe.file.source) == probe.stamp


def probe_files(files: list[InputFile], hash_content: bool = False) -> list[Probe]:
    """A batch of files: what one Ray probe task runs."""
    return [probe(f, hash_content) for f in files]


def file_status(error: str | None, n_clips: int, info: audio.AudioInfo | None, longest_dropped_s: float,
                not_speech_clips: int, config: ClipConfig) -> tuple[str, str | None]:
    """(status, reason) of a file from what its spans gave: error, unknown (no clip), or ok."""
    if error:
        return manifest.STATUS_ERROR, error
    if n_clips == 0:
        return manifest.STATUS_UNKNOWN, no_clip_reason(info, longest_dropped_s, not_speech_clips,
                                                       config.shortest_clip_s)
    return manifest.STATUS_OK, None
