"""Training data: the split by recording, the clip streams and on-the-fly SpecAugment.

The split is the line between an honest accuracy figure and a flattering one: clips of one
recording are near-copies of each other, so they must all sit on one side. Recordings are
split per label (stratified), seeded, and perturbed copies (augment > 0) are used only for
recordings on the training side.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from langsort import manifest
from langsort.errors import LangsortError

TRAIN, VALIDATION, TEST = "train", "validation", "test"
ROWS_PER_BLOCK = 256  # training clips per block (ordered_clips)
MEL_SHIFT = 3  # largest mel-band shift in training (shift_mels); 0: none
# training clips that become two languages (splice): half of them cost the model what it
# learns from little labelled audio (bench/accuracy.py --scenario little)
SPLICE_SHARE = 0.25


def ordered_clips(paths: list[str], rows: int):
    """The clips of these clips.parquet files as a Ray Dataset in one fixed order and in
    blocks of fixed sizes, so a seed repeats. Prepare writes clips in the order its tasks
    finish, hence the sort; and the sort samples its boundaries at random, so its blocks
    differed from run to run, and the seeded shuffle buffer of training, which takes whole
    blocks, mixed the same clips differently: the same seed trained another model."""
    import ray.data

    source = ray.data.read_parquet(paths).select_columns(["path", "start_s", "augment", "label", "grid"])
    source.context.execution_options.preserve_order = True
    return source.sort(["path", "augment", "start_s"]).repartition(max(1, -(-rows // ROWS_PER_BLOCK)))


def split_recordings(
    files: pd.DataFrame, seed: int = 0, validation: float = 0.15, test: float = 0.15
) -> dict[str, str]:
    """path -> train | validation | test for every recording that gave clips (status ok),
    stratified by label, at least one recording of each label on each side."""
    usable = files[files.status == "ok"]
    rng = np.random.default_rng(seed)
    split: dict[str, str] = {}
    for label, group in sorted(usable.groupby("label"), key=lambda kv: kv[0]):
        paths = sorted(group.path)
        if len(paths) < 3:
            raise LangsortError(
                f"language {label!r} has {len(paths)} usable recording(s); the split by recording needs "
                "at least 3 per language (one each for training, validation and test)"
            )
        paths = [paths[i] for i in rng.permutation(len(paths))]
        n_test = max(1, round(len(paths) * test))
        n_val = max(1, round(len(paths) * validation))
        for i, path in enumerate(paths):
            split[path] = TEST if i < n_test else VALIDATION if i < n_test + n_val else TRAIN
    if len({files.loc[files.path == p, "label"].iloc[0] for p in split}) < 2:
        raise LangsortError("training needs at least two languages (LABELLED/<language>/... folders)")
    return split


def train_only_split(prepared_dirs, labels: list[str]) -> dict[str, str]:
    """path -> train for every usable recording of datasets that only ever train (pseudo-
    labelled archive files): they never reach validation or test. Their labels must be
    among the model's."""
    split = {}
    for prepared_dir in prepared_dirs:
        files = pd.read_parquet(os.path.join(prepared_dir, manifest.FILES_NAME))
        usable = files[files.status == manifest.STATUS_OK]
        unknown = sorted(set(usable.label) - set(labels))
        if unknown:
            raise LangsortError(f"{prepared_dir} has labels the labelled corpus lacks: {', '.join(unknown)}")
        split.update({path: TRAIN for path in usable.path})
    return split


def read_clips(clips_path: str, split_of: dict[str, str], side: str, labels: list[str],
               grid_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """All clips of one side as (grids uint8 [n, *grid_shape], label indices, clip table),
    for evaluation in one process; training streams through Ray Data instead."""
    table = pq.read_table(clips_path).to_pandas()
    keep = table.path.map(split_of).eq(side) & (table.augment == 0 if side != TRAIN else True)
    rows = table[keep].sort_values(["path", "augment", "clip_index"]).reset_index(drop=True)
    grids = decode_grids(rows.grid, grid_shape)
    label_index = {label: i for i, label in enumerate(labels)}
    return grids, rows.label.map(label_index).to_numpy(np.int64), rows.drop(columns="grid")


def decode_grids(blobs, grid_shape: tuple[int, int]) -> np.ndarray:
    if len(blobs) == 0:
        return np.zeros((0, *grid_shape), np.uint8)
    return np.stack([np.frombuffer(b, np.uint8).reshape(grid_shape) for b in blobs])


class SideFilter:
    """Ray Data batch function: keep one side's clips and decode their grids."""

    def __init__(self, split_of: dict[str, str], side: str, labels: list[str], grid_shape: tuple[int, int]):
        self.split_of, self.side, self.grid_shape = split_of, side, tuple(grid_shape)
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __call__(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        keep = batch.path.map(self.split_of).eq(self.side)
        if self.side != TRAIN:
            keep &= batch.augment == 0
        rows = batch[keep]
        return {
            "grid": decode_grids(rows.grid.tolist(), self.grid_shape),
            "label": rows.label.map(self.label_index).to_numpy(np.int64),
        }


def class_weights(label_indices: np.ndarray, n_labels: int) -> np.ndarray:
    """Inverse-frequency weights [n_labels], so a language with fewer clips counts as much
    (0 for a language with none)."""
    counts = np.bincount(label_indices, minlength=n_labels).astype(np.float64)
    weights = np.divide(counts.sum(), n_labels * counts, out=np.zeros(n_labels), where=counts > 0)
    return weights.astype(np.float32)


def splice(grids: np.ndarray, labels: np.ndarray, n_labels: int, columns: int, rng: np.random.Generator,
           share: float = SPLICE_SHARE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch [batch, mels, frames] in which about `share` of the clips change language:
    the clip up to a random frame (a fifth to four fifths in), then the rest of a clip of
    another language from the same batch. Returns the grids and soft targets: each
    language's share of the frames per clip [batch, labels] and per column of the model's
    last feature map [batch, columns, labels].

    Clips of one language teach the per-column outputs nothing about where in a clip a
    language is: each column sees most of the clip and followed the clip's language, so a
    clip across a change of language gave one answer throughout, and the timeline's
    boundaries fell at clip edges, seconds from the change (bench/timeline.py)."""
    n, _, frames = grids.shape
    out, cut, partner = grids.copy(), np.full(n, frames), np.arange(n)
    for i in np.flatnonzero(rng.uniform(size=n) < share):
        others = np.flatnonzero(labels != labels[i])
        if len(others):
            partner[i], cut[i] = rng.choice(others), rng.integers(frames // 5, frames - frames // 5 + 1)
            out[i, :, cut[i]:] = grids[partner[i], :, cut[i]:]
    frame_labels = np.where(np.arange(frames)[None, :] < cut[:, None], labels[:, None], labels[partner][:, None])
    per_frame = np.eye(n_labels, dtype=np.float32)[frame_labels]  # [batch, frames, labels]
    edges = np.linspace(0, frames, columns + 1).round().astype(int)
    per_column = np.stack([per_frame[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return out, per_frame.mean(axis=1), per_column


def shift_mels(grids, max_shift: int):
    """Each grid of a batch [batch, mels, frames] moved up or down the mel axis by up to
    `max_shift` bands (the edge band fills the gap): a voice with a longer or shorter vocal
    tract, the cheap way (vocal tract length perturbation on the mel scale)."""
    import tensorflow as tf

    mels = tf.shape(grids)[1]
    shift = tf.random.uniform([tf.shape(grids)[0], 1], -max_shift, max_shift + 1, dtype=tf.int32)
    source = tf.clip_by_value(tf.range(mels)[tf.newaxis, :] - shift, 0, mels - 1)
    return tf.gather(grids, source, axis=1, batch_dims=1)


def spec_augment(grids, max_time: int = 24, max_freq: int = 16, masks: int = 2, max_shift: int = MEL_SHIFT):
    """SpecAugment on a batch of grids [batch, mels, frames] (TensorFlow ops, training only):
    a random mel shift (see shift_mels), then `masks` random time stripes and frequency bands
    set to the floor (0)."""
    import tensorflow as tf

    if max_shift:
        grids = shift_mels(grids, max_shift)
    shape = tf.shape(grids)
    batch, mels, frames = shape[0], shape[1], shape[2]
    keep = tf.ones_like(grids)
    for _ in range(masks):
        for axis_len, width_max, expand in ((frames, max_time, 1), (mels, max_freq, 2)):
            width = tf.random.uniform([batch, 1], 0, width_max + 1, dtype=tf.int32)
            room = tf.cast(axis_len - width + 1, tf.float32)
            start = tf.cast(tf.random.uniform([batch, 1]) * room, tf.int32)
            pos = tf.range(axis_len)[tf.newaxis, :]
            stripe = tf.cast((pos >= start) & (pos < start + width), grids.dtype)
            keep *= 1.0 - tf.expand_dims(stripe, expand)
    return grids * keep
