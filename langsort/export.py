"""`langsort export`: the trained model as one self-contained ONNX file.

Two outputs: the clip's class probabilities, and the same per time column of the CNN's last
feature map (evidence for the language timeline, see `with_column_output`).

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

    from langsort.train.loop import SAMPLE, load_model, read_model_meta

    meta = read_model_meta(model_dir)
    out_path = out_path or os.path.join(model_dir, MODEL_FILE)
    model = with_column_output(load_model(model_dir, meta))
    sample = np.load(os.path.join(model_dir, SAMPLE))["grids"].astype(np.float32)
    expected = model.predict(sample, verbose=0)

    signature = [tf.TensorSpec([None, *meta.grid_shape], tf.float32, name="grid")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    meta = dataclasses.replace(meta, column_centres=column_centres(model, sample),
                               details={**meta.details, "exported_at": _now(), "export_langsort_version": __version__})
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


def with_column_output(model):
    """The trained model with a second output: class probabilities per time column of the
    backbone's last feature map (averaged over frequency), through the same classifier head.
    Global average pooling and the head are linear up to the softmax, so the columns'
    logits average to the clip's: the language timeline gets evidence every couple of
    seconds from the same inference (see langsort.timeline)."""
    import tensorflow as tf
    import tf_keras

    # the backbone is a nested model: its last node is the call inside this model
    feature_map = model.backbone.get_output_at(-1)  # [batch, mel rows, time columns, channels]
    head = model.get_layer("probabilities")
    kernel, bias = tf.constant(head.kernel.numpy()), tf.constant(head.bias.numpy())
    column_probabilities = tf_keras.layers.Lambda(
        lambda t: tf.nn.softmax(tf.matmul(tf.reduce_mean(t, axis=1), kernel) + bias), name="column_probabilities",
    )(feature_map)
    return tf_keras.Model(model.input, [model.output, column_probabilities], name=model.name)


def column_centres(model, grids: np.ndarray) -> tuple[float, ...] | None:
    """Where in a clip (0..1 of its frames) each column output draws its evidence from: the
    centre of mass of the output's gradient over the input frames, on sample grids. A column
    of the last feature map sees most of the clip, and edge columns look inwards, so this,
    not the column's nominal place, is where its evidence belongs on the timeline. None
    when the centres do not come out in order (the timeline then uses equal windows)."""
    import tensorflow as tf

    if not len(grids):
        return None
    x = tf.convert_to_tensor(grids[:8])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        columns = model(x)[1]  # [batch, columns, labels]
        outputs = [[columns[:, j, k] for k in range(columns.shape[2])] for j in range(columns.shape[1])]
    frames = (np.arange(grids.shape[-1]) + 0.5) / grids.shape[-1]  # each frame's middle, as a share of the clip
    centres = []
    for per_label in outputs:
        weight = sum(np.abs(tape.gradient(output, x).numpy()).sum(axis=(0, 1)) for output in per_label)
        centres.append(float(weight @ frames / max(weight.sum(), 1e-12)))
    del tape
    return tuple(centres) if all(b > a for a, b in zip(centres, centres[1:])) else None


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
