"""Accuracy figures from predicted and true label indices: pure numpy, shared by training's
evaluation and the report's comparison with a truth file."""

from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    matrix = np.zeros((n_labels, n_labels), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def summarize(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
    (rows: truth, columns: prediction)."""
    matrix = confusion(truth, predicted, len(labels))
    per_class = {}
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i].sum() if matrix[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = dict(precision=float(precision), recall=float(recall), f1=float(f1), support=int(matrix[i].sum()))
    return dict(
        n=int(len(truth)),
        accuracy=float(np.mean(truth == predicted)) if len(truth) else 0.0,
        macro_f1=float(np.mean([c["f1"] for c in per_class.values()])),
        per_class=per_class,
        confusion=matrix.tolist(),
    )
