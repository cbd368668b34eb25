"""What a trained model carries, typed: its labels, the exact spectrogram and segment
parameters it was trained on, backbone, image size and metrics.

`ModelMeta` is written by training (MODEL_DIR/model.json) and travels inside the exported
ONNX file (metadata key "langsort"), so labelling needs nothing but the file. Reading an
ONNX model validates that metadata and the graph's input/output shapes in one pass, before
any Ray worker starts: a bad file is one line saying what is wrong, never a traceback from a
worker. Light on purpose (no TensorFlow, no Ray): label, registry, compare and bench use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from langsort import storage
from langsort.errors import LangsortError
from langsort.features import SpectrogramParams
from langsort.segment import SegmentParams

MODEL_FILE = "model.onnx"  # what export writes in MODEL_DIR, and the registry keeps per model
METADATA_KEY = "langsort"
CARD_KEY = "model_card"
MAX_LABELS = 1000
MAX_GRID_CELLS = 512 * 2048  # a grid this big is not a langsort spectrogram; refuse before allocating it
MIN_WIDTH, MAX_WIDTH = 0.1, 2.0  # MobileNetV2's width multiplier (alpha) that langsort accepts
MAX_MEMBERS = 8
_CORE = ("labels", "spectrogram", "segment", "backbone", "image_size", "width", "members", "grid_shape", "metrics",
         "column_centres")


class ModelFileError(LangsortError):
    """A --model that is not a usable langsort ONNX model; the message says what to do."""


@dataclass(frozen=True)
class ModelMeta:
    """The model's contract with labelling, plus `details` (when and how it was trained,
    kept as written: versions, options, timings) for the card and for people."""

    labels: list[str]
    spectrogram: SpectrogramParams
    segment: SegmentParams
    backbone: str
    image_size: int
    width: float = 1.0  # MobileNetV2's width multiplier (alpha); 1.0 for the ResNets
    members: int = 1  # models of this architecture whose outputs are averaged (self-training's last students)
    # where each column output looks (0..1): measured by exports before training on spliced
    # clips (langsort.train.data.splice), whose columns answer for equal shares of the clip
    column_centres: tuple[float, ...] | None = None
    metrics: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.spectrogram.grid_shape

    def to_dict(self) -> dict:
        return {**self.details, "labels": list(self.labels), "spectrogram": self.spectrogram.to_dict(),
                "segment": dataclasses.asdict(self.segment), "backbone": self.backbone, "image_size": self.image_size,
                "width": self.width, "members": self.members, "grid_shape": list(self.grid_shape),
                "metrics": dict(self.metrics),
                **({"column_centres": list(self.column_centres)} if self.column_centres else {})}

    @classmethod
    def from_dict(cls, data: object) -> "ModelMeta":
        """Validated; raises ModelFileError naming the first thing that is wrong."""
        if not isinstance(data, dict):
            raise ModelFileError(f"metadata must be an object, got {type(data).__name__}")
        missing = [k for k in ("labels", "spectrogram", "segment", "backbone", "image_size") if k not in data]
        if missing:
            raise ModelFileError(f"metadata lacks {', '.join(missing)}")
        labels = data["labels"]
        if (not isinstance(labels, list) or not 2 <= len(labels) <= MAX_LABELS
                or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels)):
            raise ModelFileError(f"labels must be 2 to {MAX_LABELS} distinct names")
        spectrogram = _params(SpectrogramParams, data["spectrogram"], "spectrogram")
        segment = _params(SegmentParams, data["segment"], "segment")
        if spectrogram.n_mels * spectrogram.frames > MAX_GRID_CELLS:
            raise ModelFileError(f"grid {spectrogram.n_mels}x{spectrogram.frames} is too large")
        if "grid_shape" in data and list(data["grid_shape"]) != list(spectrogram.grid_shape):
            raise ModelFileError(f"grid_shape {data['grid_shape']} does not match the spectrogram parameters")
        image_size = data["image_size"]
        if not isinstance(image_size, int) or not 8 <= image_size <= 2048:
            raise ModelFileError(f"image_size must be a whole number of pixels, got {image_size!r}")
        if not isinstance(data["backbone"], str):
            raise ModelFileError("backbone must be a name")
        width = data.get("width", 1.0)
        if not isinstance(width, (int, float)) or not MIN_WIDTH <= width <= MAX_WIDTH:
            raise ModelFileError(f"width must be a multiplier between {MIN_WIDTH} and {MAX_WIDTH:g}, got {width!r}")
        members = data.get("members", 1)
        if not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
            raise ModelFileError(f"members must be a whole number from 1 to {MAX_MEMBERS}, got {members!r}")
        centres = data.get("column_centres")
        if centres is not None and (not isinstance(centres, list) or not centres
                                    or not all(isinstance(c, (int, float)) and 0 <= c <= 1 for c in centres)
                                    or any(b <= a for a, b in zip(centres, centres[1:]))):
            raise ModelFileError("column_centres must be increasing shares of a clip between 0 and 1")
        metrics = data.get("metrics") or {}
        return cls(labels=list(labels), spectrogram=spectrogram, segment=segment, backbone=data["backbone"],
                   image_size=image_size, width=float(width), members=members,
                   metrics=metrics if isinstance(metrics, dict) else {},
                   column_centres=tuple(float(c) for c in centres) if centres is not None else None,
                   details={k: v for k, v in data.items() if k not in _CORE})


def _params(kind, value: object, name: str):
    if not isinstance(value, dict):
        raise ModelFileError(f"{name} parameters must be an object")
    known = {f.name for f in dataclasses.fields(kind)}
    extra = sorted(set(value) - known)
    if extra:
        raise ModelFileError(f"unknown {name} parameter(s): {', '.join(extra)}")
    try:
        return kind(**value)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{name} parameters: {exc}") from None


@dataclass(frozen=True)
class ModelInfo:
    """An ONNX model as labelling uses it: where it is, its content hash, its metadata."""

    path: str
    sha256: str
    meta: ModelMeta

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.meta.grid_shape


def read_model_info(path: str) -> ModelInfo:
    """Read and validate an exported model: metadata, and graph shapes against it."""
    import onnx

    if storage.is_dir(path):
        inside = storage.join(path, MODEL_FILE)
        hint = f"did you mean --model {inside}?" if storage.exists(inside) else "give the .onnx file from langsort export"
        raise ModelFileError(f"--model {path} is a folder: {hint}")
    if not storage.exists(path):
        raise ModelFileError(f"model file not found: {path} (give an .onnx file from langsort export or a registry name)")
    data = storage.read_bytes(path)
    try:
        proto = onnx.load_from_string(data)
    except Exception:
        raise ModelFileError(f"{path} is not an ONNX model: export one with `langsort export MODEL_DIR`") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelFileError(f"{path} is an ONNX model without langsort metadata: export it with `langsort export`")
    try:
        meta = ModelMeta.from_dict(json.loads(props[METADATA_KEY]))
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: langsort metadata is not JSON") from None
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}; export the model again with `langsort export`") from None
    _check_graph(path, proto, meta)
    return ModelInfo(path=path, sha256=hashlib.sha256(data).hexdigest(), meta=meta)


def _check_graph(path: str, proto, meta: ModelMeta) -> None:
    """One grid input [batch, mels, frames]; outputs [batch, labels] and optionally the
    per-column probabilities [batch, columns, labels] (see langsort.export), where fixed."""

    def dims(value_info) -> list:
        shape = value_info.type.tensor_type.shape
        return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]

    def fits(got: list, expected: list) -> bool:
        return len(got) == len(expected) and not any(g and e and g != e for g, e in zip(got, expected))

    inputs, outputs = list(proto.graph.input), list(proto.graph.output)
    if len(inputs) != 1 or len(outputs) not in (1, 2):
        raise ModelFileError(f"{path}: expected one input and one or two outputs, found {len(inputs)} and {len(outputs)}")
    expected = [("input", inputs[0], [None, *meta.grid_shape]), ("output", outputs[0], [None, len(meta.labels)])]
    if len(outputs) == 2:
        expected.append(("column output", outputs[1], [None, None, len(meta.labels)]))
    for side, value, shape in expected:
        if not fits(dims(value), shape):
            raise ModelFileError(f"{path}: {side} shape {dims(value)} does not fit the metadata (expected {shape})")


def model_card(meta: ModelMeta) -> str:
    details, metrics, spec, segment = meta.details, meta.metrics, meta.spectrogram, meta.segment
    return "\n".join([
        f"# langsort model: {', '.join(meta.labels)}",
        "",
        f"- backbone: {meta.backbone} ({details.get('initial_weights', '?')} initial weights), image {meta.image_size}px"
        + (f", the mean of {meta.members} such models" if meta.members > 1 else ""),
        f"- labels: {', '.join(meta.labels)}",
        f"- trained: {details.get('trained_at', '?')} with langsort {details.get('langsort_version', '?')}, "
        f"{details.get('training_seconds', 0) / 60:.1f} min on {details.get('workers', '?')} Ray Train worker(s)",
        f"- trained on: {details.get('prepared', '?')}",
        f"- test split (grouped by recording): clip accuracy {metrics.get('clip_accuracy', float('nan')):.3f}, "
        f"file accuracy {metrics.get('file_accuracy', float('nan')):.3f}, macro-F1 {metrics.get('macro_f1', float('nan')):.3f} "
        f"({metrics.get('test_clips', '?')} clips, {metrics.get('test_files', '?')} files)",
        f"- spectrogram: {spec.sample_rate} Hz, n_fft {spec.n_fft}, hop {spec.hop_length}, "
        f"{spec.n_mels} mel bands {spec.fmin:g}-{spec.fmax:g} Hz, grid {meta.grid_shape[0]}x{meta.grid_shape[1]}",
        f"- clips: {segment.min_seconds:g}-{segment.max_seconds:g} s of speech",
        "- input: `grid` float32 [batch, mels, frames] (0-255); outputs: probabilities [batch, labels], and "
        "per time column [batch, columns, labels] for the language timeline",
        "",
    ])
