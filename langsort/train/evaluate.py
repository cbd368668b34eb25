"""Accuracy figures and the plots a person looks at; pure numpy and matplotlib."""

from __future__ import annotations

import numpy as np

from langsort.aggregate import group_files
from langsort.metrics import summarize


def why_not_learned(clip: dict, labels: list[str], margin: float = 0.1, collapse: float = 0.95) -> str | None:
    """None when clip predictions (a `summarize` result, validation side) separate the
    languages; otherwise why not, in words. A model that did not learn either calls (almost)
    everything one language or is no better than chance on the languages it saw."""
    matrix = np.asarray(clip["confusion"], np.float64)
    present = matrix.sum(axis=1) > 0
    if present.sum() < 2 or matrix.sum() == 0:
        return None  # one language on the validation side: nothing to tell apart
    recall = np.diag(matrix)[present] / matrix.sum(axis=1)[present]
    balanced, chance = float(recall.mean()), 1.0 / present.sum()
    called = matrix.sum(axis=0) / matrix.sum()
    top = int(np.argmax(called))
    if called[top] >= collapse and matrix.sum(axis=1)[top] / matrix.sum() < collapse:
        return f"{called[top]:.0%} of validation clips are called {labels[top]}"
    if balanced <= chance + margin:
        return f"balanced accuracy on validation clips is {balanced:.2f}, chance is {chance:.2f}"
    return None


def clip_and_file_metrics(probs: np.ndarray, truth: np.ndarray, paths: np.ndarray, durations: np.ndarray,
                          labels: list[str]) -> dict:
    """Clip-level figures, and file-level ones after the same aggregation `label` uses."""
    clip = summarize(truth, probs.argmax(axis=1), labels)
    per_file = group_files(paths, probs, durations)
    file_truth = {str(p): t for p, t in zip(paths, truth)}
    names = sorted(per_file)
    file = summarize(np.array([file_truth[n] for n in names], np.int64),
                     np.array([per_file[n].argmax() for n in names], np.int64), labels)
    return dict(clip=clip, file=file)


def plot_history(history: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, style in (("loss", "-"), ("val_loss", "--")):
        loss_ax.plot(epochs, [h[key] for h in history], style, label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        acc_ax.plot(epochs, [h[key] for h in history], style, label=key)
    loss_ax.set(xlabel="epoch", title="loss")
    acc_ax.set(xlabel="epoch", title="accuracy", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
