"""ONNX Runtime over spectrogram grids: the callable that label's Ray Data stage and
compare's throughput measurement both run. Knows nothing of Ray, so it runs the same in a
test, a notebook or an actor (the shape of Ray's batch-inference examples)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from langsort import manifest, storage
from langsort.model import ModelFileError, ModelInfo

# Pixels of the model's square input that one ONNX Runtime call takes at most. A CNN's first
# layers hold megabytes of activations per image: a batch of 32 at 224 px spills them out of
# the core's cache, and each grid costs more than two at a time do (bench/ort_batch.py).
PIXELS_PER_RUN = 2 * 224 * 224


def check_runs(model: ModelInfo) -> None:
    """Refuse, in one line and before any worker tries, a model ONNX Runtime cannot load
    (an operator it does not know, a broken graph)."""
    try:
        OnnxPredictor(model)
    except ModelFileError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types for every kind of failure
        reason = " ".join(str(exc).split())[:200]
        raise ModelFileError(f"{model.path}: ONNX Runtime cannot run this model ({reason})") from None


class OnnxPredictor:
    """Batch callable: pandas rows with a `grid` column -> rows with p_<label> and, when the
    model has the per-column output, `columns` (float32 bytes [columns, labels]: evidence for
    the language timeline).

    Rows that are not clips (span markers) pass through with null probabilities. It reads
    the model file itself, so model bytes do not travel through the object store to every
    actor, and a file replaced mid-run is refused by its hash.
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
        self.rows_per_run = max(1, PIXELS_PER_RUN // model.meta.image_size**2)

    def predict(self, grids: np.ndarray) -> np.ndarray:
        """Clip probabilities [batch, labels]."""
        return self.predict_columns(grids)[0]

    def predict_columns(self, grids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(clip probabilities [batch, labels], per-column [batch, columns, labels] or None),
        run `rows_per_run` grids at a time."""
        grids = grids.astype(np.float32, copy=False)
        # an empty batch still makes one call, so the outputs keep their shapes
        runs = [self.session.run(None, {self.input_name: grids[i : i + self.rows_per_run]})
                for i in range(0, max(1, len(grids)), self.rows_per_run)]
        outputs = [np.concatenate(output) for output in zip(*runs)]
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        is_clip = batch.kind.eq("clip").to_numpy()
        probs = np.full((len(batch), len(self.labels)), np.nan)
        columns = [None] * len(batch)
        if is_clip.any():
            grids = np.stack([np.frombuffer(g, np.uint8).reshape(self.grid_shape) for g in batch.grid[is_clip]])
            probs[is_clip], per_column = self.predict_columns(grids)
            if per_column is not None:
                for row, clip_columns in zip(np.flatnonzero(is_clip), per_column.astype(np.float32)):
                    columns[row] = clip_columns.tobytes()
        out = batch.drop(columns=["grid"])
        for i, label in enumerate(self.labels):
            out[manifest.prob_column(label)] = probs[:, i]
        out["columns"] = columns
        return out
