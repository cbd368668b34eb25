"""The Ray Train layer: TensorflowTrainer workers fit the model on the grouped split, the
driver keeps the best epoch (early stopping on validation loss) and evaluates it.

MODEL_DIR receives:
  model.weights.h5       the best epoch's weights (the architecture is rebuilt from model.json)
  model.json             backbone, labels, image size, spectrogram and segment parameters
  metrics.json           clip/file accuracy, per-class P/R/F1, confusion on the test split, history
  history.png, confusion.png
  validation_sample.npz  real validation grids, for export's parity check
  split.json             which recording sat on which side
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from langsort import __version__, manifest
from langsort.errors import LangsortError
from langsort.features import SpectrogramParams
from langsort.model import ModelMeta
from langsort.prepare import read_meta
from langsort.segment import SegmentParams
from langsort.train import BATCH_SIZE, EPOCHS, INITIAL_WEIGHTS
from langsort.train import data as train_data

MODEL_JSON = "model.json"
WEIGHTS = "model.weights.h5"
METRICS = "metrics.json"
SAMPLE = "validation_sample.npz"
SPLIT = "split.json"
HISTORY = "history.json"


@dataclass(frozen=True)
class TrainOptions:
    backbone: str = "mobilenet_v2"
    weights: str = INITIAL_WEIGHTS  # auto | imagenet | none | PATH
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    image_size: int | None = None  # default: the prepared grid's time columns
    width: float = 1.0  # MobileNetV2's width multiplier: fewer channels train faster on little data
    workers: int | None = None  # default: one per two CPUs of the cluster
    cpus_per_worker: int | None = None  # CPUs reserved (and threads) per worker; default 1 reserved, CPUs/workers threads
    learning_rate: float = 1e-3
    patience: int = 3  # epochs without validation improvement before stopping (second half only)
    seed: int = 0
    require_learning: bool = True  # refuse a model whose validation predictions are at chance


class DidNotLearnError(LangsortError):
    """Training ended with a model that does not separate the languages; no model.json is
    written, so nothing exports, registers or labels with it. `why` says how, in words."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why


@dataclass
class TrainResult:
    model_dir: str
    metrics: dict
    seconds: float


def fit(prepared_dir: str, model_dir: str, options: TrainOptions = TrainOptions(), progress: bool = True,
        train_only: tuple[str, ...] = ()) -> TrainResult:
    """Train on a prepared dataset (local Ray or a cluster) and fill MODEL_DIR.

    `train_only`: more prepared datasets whose recordings join the training side only
    (pseudo-labelled archive files, see langsort.selftrain): validation, early stopping and
    the test figures stay on PREPARED's own recordings, so they remain honest.
    """
    from langsort.train import load_tensorflow

    load_tensorflow()  # before Ray Train's TensorFlow layer imports it, with its start-up lines
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer
    from ray.util.queue import Queue

    from langsort.runtime import cluster_cpus
    from langsort.train.backbones import auto_weights, check_backbone, check_weights, check_width, make_backbone

    started = time.perf_counter()
    check_backbone(options.backbone)
    check_width(options.backbone, options.width)
    weights = check_weights(options.weights)
    meta = read_meta(prepared_dir)
    spec = SpectrogramParams.from_dict(meta["spectrogram"])
    image_size = options.image_size or spec.frames
    if weights == "auto":
        weights = auto_weights(options.backbone, image_size)
        print(f"weights: {'ImageNet' if weights == 'imagenet' else 'none (training from scratch): ImageNet weights cannot be had here'}",
              flush=True)
    elif weights == "imagenet":
        make_backbone(options.backbone, image_size, weights, options.width)  # download now, or fail before workers start

    files = pd.read_parquet(os.path.join(prepared_dir, manifest.FILES_NAME))
    split = train_data.split_recordings(files, seed=options.seed)
    labels = sorted({files.set_index("path").label[p] for p in split})
    clips_path = os.path.join(prepared_dir, manifest.CLIPS_NAME)
    training_side = {**split, **train_data.train_only_split(train_only, labels)}
    all_clips = [clips_path] + [os.path.join(d, manifest.CLIPS_NAME) for d in train_only]
    clip_index = pd.concat([pd.read_parquet(p, columns=["path", "label"]) for p in all_clips])
    train_labels = clip_index[clip_index.path.map(training_side).eq(train_data.TRAIN)].label.map(labels.index)
    class_weight = train_data.class_weights(train_labels.to_numpy(np.int64), len(labels))

    cpus = cluster_cpus()
    workers = options.workers or max(1, cpus // 2)
    with _no_cpu_warning():
        # sorted once for both sides: sorting for each doubled the time before training starts
        source = train_data.ordered_clips(all_clips, len(clip_index)).materialize()
        datasets = {
            side: source.map_batches(train_data.SideFilter(training_side, side, labels, spec.grid_shape),
                                     batch_format="pandas").materialize()
            for side in (train_data.TRAIN, train_data.VALIDATION)
        }
        del source  # the sides hold what training needs
    config = dict(
        backbone=options.backbone, weights=weights, labels=labels, grid_shape=list(spec.grid_shape),
        image_size=image_size, width=options.width, epochs=options.epochs, batch_size=options.batch_size,
        learning_rate=options.learning_rate, patience=options.patience, seed=options.seed,
        steps_per_epoch=math.ceil(datasets[train_data.TRAIN].count() / options.batch_size / workers),
        class_weight=class_weight, threads=options.cpus_per_worker or max(1, cpus // workers),
        epoch_lines=Queue(actor_options={"num_cpus": 0}) if progress else None,
    )
    os.makedirs(model_dir, exist_ok=True)
    storage = tempfile.mkdtemp(prefix="ray-train-", dir=os.path.abspath(model_dir))
    try:  # Ray Train's run folder goes, whether training finished or failed
        trainer = TensorflowTrainer(
            _worker_loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": options.cpus_per_worker or 1}),
            run_config=RunConfig(name="langsort-train", storage_path=storage,
                                 checkpoint_config=CheckpointConfig(num_to_keep=1)),
            datasets=datasets, dataset_config=_ordered_ingest(),
        )
        with printed(config["epoch_lines"]):
            result = trainer.fit()
        with result.checkpoint.as_directory() as checkpoint:
            shutil.copy(os.path.join(checkpoint, WEIGHTS), os.path.join(model_dir, WEIGHTS))
            with open(os.path.join(checkpoint, HISTORY)) as f:
                history = json.load(f)
    finally:
        shutil.rmtree(storage, ignore_errors=True)

    seconds = time.perf_counter() - started
    model_meta = ModelMeta(
        labels=labels, spectrogram=spec, segment=SegmentParams(**meta["segment"]), backbone=options.backbone,
        image_size=image_size, width=options.width,
        details=dict(langsort_version=__version__, initial_weights=weights, options=asdict(options),
                     workers=workers, trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     training_seconds=round(seconds, 1), prepared=os.path.abspath(prepared_dir),
                     train_only=[os.path.abspath(d) for d in train_only]),
    )
    metrics = finish_model_dir(model_dir, model_meta, split, clips_path, history, options.require_learning)
    return TrainResult(model_dir=model_dir, metrics=metrics, seconds=seconds)


def _ordered_ingest():
    """Ray Train's ingest as by default, but keeping block order, so that with one worker the
    seeded shuffle sees the same stream and a seeded run repeats (the demo's promise)."""
    from ray.data import DataContext
    from ray.train import DataConfig

    options = copy.deepcopy(DataContext.get_current().execution_options)
    options.preserve_order = True
    return DataConfig(execution_options=options)


def _worker_loop(config: dict) -> None:
    """One Ray Train worker: MultiWorkerMirroredStrategy over the workers (none on one worker),
    compiled Keras steps over this worker's shard each epoch, then its validation shard."""
    import ray.train
    from ray.train import Checkpoint

    from langsort.train import load_tensorflow
    from langsort.train.backbones import build_model, with_columns

    load_tensorflow()
    import tensorflow as tf
    import tf_keras

    tf.get_logger().setLevel(logging.ERROR)  # one line per collective op otherwise
    quiet_ray_train_reports()
    tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf_keras.utils.set_random_seed(config["seed"])
    tf.config.experimental.enable_op_determinism()  # costs nothing measurable on CPU; a seed repeats
    context = ray.train.get_context()
    rank = context.get_world_rank()
    # mirror only when there is another worker: on one worker MultiWorkerMirroredStrategy ran
    # the same MobileNetV2 3.4x slower here (15 vs 52 images/s), for no gain
    if context.get_world_size() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    pretrained = config["weights"] != "none"
    with strategy.scope():
        model = build_model(config["backbone"], len(config["labels"]), tuple(config["grid_shape"]),
                            config["image_size"], config["weights"], config["width"])
        trained = with_columns(model)  # the same weights, with the per-column output to fit as well
    columns = trained.outputs[1].shape[1]

    def compile_for(learning_rate: float, backbone_trainable: bool) -> None:
        """Adam on a short warm-up, then cosine decay to the last epoch: from scratch on a
        few hundred clips, a constant rate kept validation loss jumping between epochs.
        Validation scores the clip output alone, as labelling uses it."""
        model.backbone.trainable = backbone_trainable
        steps = max(1, config["steps_per_epoch"] * config["epochs"])
        schedule = tf_keras.optimizers.schedules.CosineDecay(
            learning_rate / 10, decay_steps=steps, warmup_target=learning_rate, warmup_steps=min(steps // 10, 200))
        with strategy.scope():
            trained.compile(optimizer=tf_keras.optimizers.Adam(schedule), loss="categorical_crossentropy",
                            metrics=[["accuracy"], []])
            model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # pretrained: the head learns on a frozen backbone first, then everything fine-tunes slowly
    frozen_epochs = max(1, config["epochs"] // 3) if pretrained else 0
    compile_for(config["learning_rate"], backbone_trainable=not pretrained)
    train_shard = ray.train.get_dataset_shard("train")
    validation = ray.train.get_dataset_shard("validation")
    class_weight = config["class_weight"]
    augment = tf.function(lambda grids: train_data.spec_augment(tf.cast(grids, tf.float32)))
    splice_rng = np.random.default_rng([config["seed"], rank])

    def run_epoch(shard, step, stepped, **shuffle) -> dict:
        """Numpy batches straight from the shard into the compiled step: `to_tf`'s generator
        pipeline left a core idle on 2-core machines (about half the images per second)."""
        stepped.reset_metrics()
        logs = {}
        for batch in shard.iter_batches(batch_size=config["batch_size"], batch_format="numpy", **shuffle):
            logs = step(batch)
        return {k: float(v) for k, v in logs.items()}

    def train_step(batch):
        grids, clip_targets, column_targets = train_data.splice(
            batch["grid"], batch["label"], len(config["labels"]), columns, splice_rng)
        weights = clip_targets @ class_weight
        logs = trained.train_on_batch(augment(grids), [clip_targets, column_targets], sample_weight=[weights, weights],
                                      reset_metrics=False, return_dict=True)
        return dict(loss=logs["loss"], accuracy=logs["probabilities_accuracy"])

    def test_step(batch):
        return model.test_on_batch(batch["grid"].astype(np.float32), batch["label"], reset_metrics=False,
                                   return_dict=True)

    history, best_loss, best_weights, stale = [], math.inf, None, 0
    for epoch in range(config["epochs"]):
        epoch_started = time.perf_counter()
        if pretrained and epoch == frozen_epochs:
            compile_for(config["learning_rate"] / 10, backbone_trainable=True)
        fitted = run_epoch(train_shard, train_step, trained, local_shuffle_buffer_size=512,
                           local_shuffle_seed=config["seed"] + epoch)
        evaluated = run_epoch(validation, test_step, model)
        row = dict(epoch=epoch, loss=fitted["loss"], accuracy=fitted["accuracy"],
                   val_loss=evaluated["loss"], val_accuracy=evaluated["accuracy"])
        history.append(row)
        improved = row["val_loss"] < best_loss - 1e-4
        if improved:
            best_loss, best_weights, stale = row["val_loss"], model.get_weights(), 0
        else:
            stale += 1
        # no early stop in the first half: from scratch, validation loss is noise for a few epochs
        settled = epoch + 1 >= config["epochs"] // 2
        last = epoch == config["epochs"] - 1 or (settled and stale >= config["patience"])
        if rank == 0 and config["epoch_lines"] is not None:
            config["epoch_lines"].put(
                f"epoch {epoch + 1}/{config['epochs']}: loss {row['loss']:.3f} acc {row['accuracy']:.3f} | "
                f"val_loss {row['val_loss']:.3f} val_acc {row['val_accuracy']:.3f} "
                f"({time.perf_counter() - epoch_started:.0f} s){' *' if improved else ''}")
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if improved or last:  # every worker saves (reading mirrored variables is collective)
                current = model.get_weights()
                model.set_weights(best_weights)
                model.save_weights(os.path.join(tmp, WEIGHTS))
                model.set_weights(current)
                with open(os.path.join(tmp, HISTORY), "w") as f:
                    json.dump(history, f)
                checkpoint = Checkpoint.from_directory(tmp) if rank == 0 else None
            ray.train.report(row, checkpoint=checkpoint)
        if last:
            break


@contextlib.contextmanager
def printed(lines) -> Iterator[None]:
    """Print what the workers put on `lines` (a Ray queue; None: nothing) while the block
    runs, and what is left after it. Epoch lines travel this way rather than through worker
    logs, which carry Ray's own notes and stay off (langsort.runtime.init_ray)."""
    if lines is None:
        yield
        return
    import ray
    from ray.util.queue import Empty

    done = threading.Event()

    def relay() -> None:
        while True:
            try:
                print(lines.get(timeout=0.5), flush=True)
            except Empty:
                if done.is_set():
                    return

    printer = threading.Thread(target=relay, name="epoch-lines", daemon=True)
    printer.start()
    try:
        yield
    finally:
        done.set()
        printer.join()
        ray.kill(lines.actor)


@contextlib.contextmanager
def _no_cpu_warning():
    """Ray Data warns that a dataset "will hang" when it starts before the CPUs of the
    execution just before it are handed back (a moment, on a small machine); these do not
    hang, and a newcomer's first training run should not say so."""
    logger = logging.getLogger("ray.data.dataset")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quiet_ray_train_reports() -> None:
    """Ray Train logs two lines per epoch on a worker (checkpoint made, result reported),
    which would bury the epoch lines; the report logger is named by its file path."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    try:
        from ray.train.v2._internal.execution import context as reporting
    except ImportError:  # another Ray layout: the lines are noise, not an error
        return
    logging.getLogger(reporting.__file__).setLevel(logging.WARNING)


def finish_model_dir(model_dir: str, model_meta: ModelMeta, split: dict[str, str], clips_path: str,
                     history: list[dict], require_learning: bool = True) -> dict:
    """Evaluate the best weights on the test side and write metrics, plots and samples;
    model.json (what makes the folder a model) only when the model learned."""
    from langsort.train.evaluate import clip_and_file_metrics, plot_confusion, plot_history, why_not_learned

    model = load_model(model_dir, model_meta)
    labels, grid_shape = model_meta.labels, model_meta.grid_shape
    evaluation = {}
    for side in (train_data.VALIDATION, train_data.TEST):
        grids, truth, rows = train_data.read_clips(clips_path, split, side, labels, grid_shape)
        probs = model.predict(grids.astype(np.float32), batch_size=64, verbose=0)
        evaluation[side] = clip_and_file_metrics(probs, truth, rows.path.to_numpy(),
                                                 (rows.end_s - rows.start_s).to_numpy(), labels)
        if side == train_data.VALIDATION:
            pick = np.random.default_rng(0).permutation(len(grids))[:32]
            np.savez_compressed(os.path.join(model_dir, SAMPLE), grids=grids[pick], probabilities=probs[pick])
    metrics = dict(test=evaluation[train_data.TEST], validation=evaluation[train_data.VALIDATION],
                   history=history, recordings={s: sum(v == s for v in split.values())
                                                for s in (train_data.TRAIN, train_data.VALIDATION, train_data.TEST)})
    model_meta = dataclasses.replace(model_meta, metrics=summary_line(metrics),
                                     details={**model_meta.details, "parameters": int(model.count_params())})
    for name, content in ((METRICS, metrics), (SPLIT, split)):
        with open(os.path.join(model_dir, name), "w") as f:
            json.dump(content, f, indent=2)
    if history:  # an average of trained models (average_models) has none of its own
        plot_history(history, os.path.join(model_dir, "history.png"))
    plot_confusion(metrics["test"]["clip"]["confusion"], labels, os.path.join(model_dir, "confusion.png"),
                   "test clips (grouped by recording)")
    why = why_not_learned(metrics["validation"]["clip"], labels) if require_learning else None
    if why:
        raise DidNotLearnError(
            f"the model did not learn to separate the languages ({why}); try more recordings per language, "
            f"perturbed copies (prepare --augment 2) or more --epochs (details in {model_dir}/metrics.json)", why)
    with open(os.path.join(model_dir, MODEL_JSON), "w") as f:
        json.dump(model_meta.to_dict(), f, indent=2)
    return metrics


def average_models(model_dirs: list[str], model_dir: str, prepared_dir: str) -> dict:
    """MODEL_DIR as the mean of models trained apart on one prepared corpus, with one
    architecture and split (`backbones.averaged`), evaluated on that split's validation and
    test recordings as a trained model is."""
    from langsort.train.backbones import averaged

    metas = [read_model_meta(d) for d in model_dirs]
    last = metas[-1]
    architecture = lambda m: (m.labels, m.backbone, m.image_size, m.width, m.members, m.grid_shape)  # noqa: E731
    splits = []
    for folder in model_dirs:
        with open(os.path.join(folder, SPLIT)) as f:
            splits.append(json.load(f))
    if any(architecture(m) != architecture(last) for m in metas) or any(s != splits[-1] for s in splits):
        raise LangsortError(f"{', '.join(model_dirs)}: labels, architecture or split differ; cannot average them")
    model = averaged([load_model(folder, meta) for folder, meta in zip(model_dirs, metas)])
    os.makedirs(model_dir, exist_ok=True)
    model.save_weights(os.path.join(model_dir, WEIGHTS))
    meta = dataclasses.replace(last, members=len(model_dirs), metrics={},
                               details={**last.details, "averages": [os.path.abspath(d) for d in model_dirs]})
    return finish_model_dir(model_dir, meta, splits[-1], os.path.join(prepared_dir, manifest.CLIPS_NAME), [],
                            require_learning=False)


def summary_line(metrics: dict) -> dict:
    test = metrics["test"]
    return dict(clip_accuracy=test["clip"]["accuracy"], file_accuracy=test["file"]["accuracy"],
                macro_f1=test["clip"]["macro_f1"], test_clips=test["clip"]["n"], test_files=test["file"]["n"])


def read_model_meta(model_dir: str) -> ModelMeta:
    path = os.path.join(model_dir, MODEL_JSON)
    if not os.path.isfile(path):
        raise LangsortError(f"{model_dir} is not a trained model folder (no {MODEL_JSON}): run langsort train first")
    with open(path) as f:
        return ModelMeta.from_dict(json.load(f))


def load_model(model_dir: str, model_meta: ModelMeta | None = None):
    """The trained tf-keras model, rebuilt from model.json and the saved weights."""
    from langsort.train.backbones import averaged, build_model

    meta = model_meta or read_model_meta(model_dir)
    models = [build_model(meta.backbone, len(meta.labels), meta.grid_shape, meta.image_size, "none", meta.width)
              for _ in range(meta.members)]
    model = averaged(models) if meta.members > 1 else models[0]
    model.load_weights(os.path.join(model_dir, WEIGHTS))
    return model


def evaluate_prepared(model_dir: str, prepared_dir: str) -> dict:
    """Clip and file figures of a trained model on every clip of another prepared corpus
    (for example recordings in voices never seen in training)."""
    from langsort.train.evaluate import clip_and_file_metrics

    meta = read_model_meta(model_dir)
    labels = meta.labels
    clips_path = os.path.join(prepared_dir, manifest.CLIPS_NAME)
    everything = {p: train_data.TEST for p in pd.read_parquet(clips_path, columns=["path"]).path.unique()}
    grids, truth, rows = train_data.read_clips(clips_path, everything, train_data.TEST, labels, meta.grid_shape)
    probs = load_model(model_dir, meta).predict(grids.astype(np.float32), batch_size=64, verbose=0)
    return clip_and_file_metrics(probs, truth, rows.path.to_numpy(), (rows.end_s - rows.start_s).to_numpy(), labels)
