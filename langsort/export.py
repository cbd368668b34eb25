"""`langsort export`: the trained model as one self-contained ONNX file.

Two outputs: the clip's class probabilities, and the same per time column of the CNN's last
feature map (evidence for the language timeline, see `langsort.train.backbones.with_columns`).

Everything labelling needs travels in the file's metadata (key "langsort", JSON): labels,
spectrogram and segment parameters, backbone, image size, grid shape and training metrics,
plus a human-readable model card (key "model_card"). The export is refused unless ONNX
Runtime reproduces the trained model's outputs on real validation spectrograms within 1e-4.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from dataclasses import dataclass

import numpy as np

from langsort import __version__, storage
from langsort.errors import LangsortError
from langsort.model import CARD_KEY, METADATA_KEY, MODEL_FILE, model_card

PARITY_TOLERANCE = 1e-4


class ExportError(LangsortError):
    """The exported model does not behave like the trained one."""


@dataclass
class ExportResult:
    path: str
    sha256: str
    max_difference: float
    quantized_path: str | None = None
    quantized_agreement: float | None = None
    quantized_max_difference: float | None = None


def export(model_dir: str, out_path: str | None = None, quantize: str | None = None) -> ExportResult:
    """Convert, attach metadata, check parity, write atomically; optionally an int8 copy."""
    from langsort.train import load_tensorflow

    load_tensorflow()  # tf-keras chosen, start-up lines hidden
    import onnx
    import tensorflow as tf
    import tf2onnx

    from langsort.train.backbones import with_columns
    from langsort.train.loop import SAMPLE, load_model, read_model_meta

    meta = read_model_meta(model_dir)
    out_path = out_path or os.path.join(model_dir, MODEL_FILE)
    model = with_columns(load_model(model_dir, meta))
    sample = np.load(os.path.join(model_dir, SAMPLE))["grids"].astype(np.float32)
    expected = model.predict(sample, verbose=0)

    signature = [tf.TensorSpec([None, *meta.grid_shape], tf.float32, name="grid")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    meta = dataclasses.replace(meta, details={**meta.details, "exported_at": _now(),
                                              "export_langsort_version": __version__})
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta.to_dict()), CARD_KEY: model_card(meta)})
    serialized = proto.SerializeToString()

    got = _onnx_outputs(serialized, sample)
    difference = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected)) if len(sample) else 0.0
    if difference > PARITY_TOLERANCE:
        raise ExportError(f"ONNX output differs from the trained model by {difference:.2e} (> {PARITY_TOLERANCE:g}); not written")
    got = got[0]
    storage.write_bytes_atomic(out_path, serialized)
    with open(os.path.join(os.path.dirname(os.path.abspath(out_path)), "MODEL_CARD.md"), "w") as f:
        f.write(model_card(meta))
    result = ExportResult(path=out_path, sha256=hashlib.sha256(serialized).hexdigest(), max_difference=difference)
    if quantize:
        _quantize(result, sample, got)
    return result


def average(model_paths: list[str], out_path: str) -> ExportResult:
    """One ONNX model whose outputs (clip and column probabilities) are the mean of the given
    exported models' (same labels and grid), with the first one's metadata. Self-training's
    first teacher is such an average: one model's seed decides which unseen voices it gets
    right, and the mean of a few seeds pseudo-labels more evenly (see bench/timeline.py).
    Refused unless ONNX Runtime gives the mean of the models' own outputs within 1e-4."""
    import onnx

    from langsort.model import read_model_info

    infos = [read_model_info(path) for path in model_paths]
    first = infos[0].meta
    for info in infos[1:]:
        if (info.meta.labels, info.meta.grid_shape) != (first.labels, first.grid_shape):
            raise ExportError(f"{info.path}: labels or grid differ from {model_paths[0]}'s; cannot average them")
    model_bytes = [storage.read_bytes(path) for path in model_paths]
    protos = [onnx.load_from_string(data) for data in model_bytes]
    grid, outputs = protos[0].graph.input[0], [output.name for output in protos[0].graph.output]
    nodes, initializers = [], []
    for index, proto in enumerate(protos):
        prefixed = onnx.compose.add_prefix(proto, f"m{index}_")
        own_input = prefixed.graph.input[0].name
        for node in prefixed.graph.node:
            node.input[:] = [grid.name if name == own_input else name for name in node.input]
        nodes += prefixed.graph.node
        initializers += prefixed.graph.initializer
    nodes += [onnx.helper.make_node("Mean", [f"m{index}_{name}" for index in range(len(protos))], [name])
              for name in outputs]
    graph = onnx.helper.make_graph(nodes, "langsort_average", [grid], list(protos[0].graph.output), initializers)
    averaged = onnx.helper.make_model(graph, opset_imports=protos[0].opset_import, ir_version=protos[0].ir_version)
    meta = dataclasses.replace(first, details={**first.details, "averages": [info.sha256 for info in infos]})
    onnx.helper.set_model_props(averaged, {METADATA_KEY: json.dumps(meta.to_dict()), CARD_KEY: model_card(meta)})
    serialized = averaged.SerializeToString()

    grids = np.random.default_rng(0).integers(0, 256, (4, *first.grid_shape)).astype(np.float32)
    per_model = [_onnx_outputs(data, grids) for data in model_bytes]
    expected = [np.mean(values, axis=0) for values in zip(*per_model)]
    difference = max(float(np.max(np.abs(g - e))) for g, e in zip(_onnx_outputs(serialized, grids), expected))
    if difference > PARITY_TOLERANCE:
        raise ExportError(f"averaged model differs from the mean of its models by {difference:.2e}; not written")
    storage.write_bytes_atomic(out_path, serialized)
    return ExportResult(path=out_path, sha256=hashlib.sha256(serialized).hexdigest(), max_difference=difference)


def _quantize(result: ExportResult, sample: np.ndarray, float_probs: np.ndarray) -> None:
    """Static QDQ int8, calibrated on real spectrograms; reports agreement with float32."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Grids(CalibrationDataReader):
        def __init__(self):
            self._items = iter([{"grid": sample[i : i + 1]} for i in range(len(sample))])

        def get_next(self):
            return next(self._items, None)

    base = result.path[: -len(".onnx")] if result.path.endswith(".onnx") else result.path
    target = f"{base}.int8.onnx"
    prepared = f"{base}.{uuid.uuid4().hex}.pre.onnx"
    try:
        quant_pre_process(result.path, prepared)
        quantize_static(prepared, target, Grids(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        if os.path.exists(prepared):
            os.remove(prepared)
    import onnx

    proto = onnx.load(target)
    source = onnx.load(result.path, load_external_data=False)
    onnx.helper.set_model_props(proto, {p.key: p.value for p in source.metadata_props})
    onnx.save(proto, target)
    int8 = _onnx_outputs(proto.SerializeToString(), sample)[0]
    result.quantized_path = target
    result.quantized_agreement = float(np.mean(int8.argmax(1) == float_probs.argmax(1)))
    result.quantized_max_difference = float(np.max(np.abs(int8 - float_probs)))


def _onnx_outputs(serialized: bytes, grids: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: grids})


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
