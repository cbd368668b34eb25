"""`langsort run` and `langsort demo`: every stage in order, each skipped when its finished
output is already there, so a second run after an interruption continues where the first
stopped (label itself resumes file by file).

OUT/
  prepared/             prepare on LABELLED (training clips, with perturbed copies)
  model/                train; model/model.onnx from export
  manifests/            label on UNSORTED; report.html
  sorted/<language>/    sort (copy)
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from langsort import selftrain, synth
from langsort.aggregate import DEFAULT_THRESHOLD
from langsort.model import MODEL_FILE
from langsort.train import BATCH_SIZE, EPOCHS, IMAGE_SIZE, INITIAL_WEIGHTS, SCRATCH_EPOCHS, SCRATCH_IMAGE_SIZE


@dataclass(frozen=True)
class RunSettings:
    backbone: str = "mobilenet_v2"
    weights: str = INITIAL_WEIGHTS
    epochs: int | None = None  # default: EPOCHS with ImageNet weights, SCRATCH_EPOCHS from scratch
    patience: int | None = None  # default: 3 with ImageNet weights; from scratch no early stop
    image_size: int | None = None  # default: IMAGE_SIZE with ImageNet weights, SCRATCH_IMAGE_SIZE from scratch
    width: float = 1.0  # MobileNetV2's width multiplier
    batch_size: int = BATCH_SIZE
    augment: int = 2
    threshold: float = DEFAULT_THRESHOLD
    sort_mode: str = "copy"
    seed: int = 0
    self_training_rounds: int = selftrain.RUN_ROUNDS  # on UNSORTED; 0: the labelled recordings alone
    teachers: int = selftrain.RUN_TEACHERS  # averaged to label UNSORTED in the first round
    min_confidence: float = selftrain.MIN_CONFIDENCE  # what a stretch of UNSORTED needs to be pseudo-labelled


@dataclass
class RunResult:
    out: str
    model: str
    manifests: str
    sorted_dir: str
    report_html: str
    report_text: str
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds (0: reused)


def run(labelled: str, unsorted: str, out: str, settings: RunSettings = RunSettings(), progress: bool = True,
        echo=print, truth_csv: str | None = None) -> RunResult:
    from langsort import export as export_stage
    from langsort import label as label_stage
    from langsort import prepare as prepare_stage
    from langsort import report as report_stage
    from langsort.sort import sort_archive
    from langsort.train import loop

    paths = dict(prepared=os.path.join(out, "prepared"), model=os.path.join(out, "model"),
                 manifests=os.path.join(out, "manifests"), sorted=os.path.join(out, "sorted"))
    onnx_path = os.path.join(paths["model"], MODEL_FILE)
    stages: dict[str, float] = {}

    def stage(name: str, done: bool, action) -> None:
        if done:
            echo(f"[{name}] already done, kept")
            stages[name] = 0.0
            return
        echo(f"[{name}] ...")
        started = time.perf_counter()
        action()
        stages[name] = time.perf_counter() - started
        echo(f"[{name}] done in {stages[name]:.0f} s")

    settings = resolved(settings, echo)
    config, options = stage_settings(settings)
    stage("prepare", os.path.isfile(os.path.join(paths["prepared"], prepare_stage.PREPARED_META)),
          lambda: prepare_stage.prepare(labelled, paths["prepared"], config, progress=progress))
    if settings.self_training_rounds:
        plan = selftrain.SelfTraining(unsorted, settings.self_training_rounds, settings.min_confidence,
                                      settings.teachers)
        train = lambda: selftrain.fit_with_unlabelled(paths["prepared"], paths["model"], options, plan,  # noqa: E731
                                                      progress=progress, echo=echo)
    else:
        train = lambda: loop.fit(paths["prepared"], paths["model"], options, progress=progress)  # noqa: E731
    stage("train", os.path.isfile(os.path.join(paths["model"], loop.MODEL_JSON)), train)
    stage("export", os.path.isfile(onnx_path), lambda: export_stage.export(paths["model"], onnx_path))
    stage("label", False, lambda: label_stage.label(unsorted, onnx_path, paths["manifests"],
                                                    threshold=settings.threshold, progress=progress))
    stage("sort", False, lambda: sort_archive(paths["manifests"], paths["sorted"], settings.sort_mode,
                                              echo=lambda line: None))
    text, html_path = report_stage.write(paths["manifests"], truth_csv)
    return RunResult(out=out, model=onnx_path, manifests=paths["manifests"], sorted_dir=paths["sorted"],
                     report_html=html_path, report_text=text, stages=stages)


def stage_settings(settings: RunSettings):
    """(prepare.PrepareConfig, loop.TrainOptions) of resolved run settings: what `run` prepares
    and trains with, for benches that train its model without the rest of the run."""
    from langsort.features import SpectrogramParams
    from langsort.prepare import PrepareConfig
    from langsort.train.loop import TrainOptions

    config = PrepareConfig(spectrogram=SpectrogramParams(frames=settings.image_size), augment=settings.augment,
                           seed=settings.seed)
    options = TrainOptions(backbone=settings.backbone, weights=settings.weights, epochs=settings.epochs,
                           patience=settings.patience, image_size=settings.image_size, width=settings.width,
                           batch_size=settings.batch_size, seed=settings.seed)
    return config, options


def resolved(settings: RunSettings, echo=print) -> RunSettings:
    """`auto` weights decided (before prepare: the grid width depends on it), and image size
    and epochs filled in for training from ImageNet weights or from scratch."""
    from langsort.train.backbones import auto_weights, check_weights

    weights = check_weights(settings.weights)
    if weights == "auto":
        weights = auto_weights(settings.backbone, IMAGE_SIZE)
        echo(f"weights: {'ImageNet' if weights == 'imagenet' else 'none (training from scratch): ImageNet weights cannot be had here'}")
    scratch = weights == "none"
    epochs = settings.epochs or (SCRATCH_EPOCHS if scratch else EPOCHS)
    # from scratch, validation on a few recordings is too noisy to stop on: the learning rate
    # decays to the last epoch and the best epoch is kept (bench/accuracy.py --scenario little)
    return replace(settings, weights=weights, epochs=epochs,
                   image_size=settings.image_size or (SCRATCH_IMAGE_SIZE if scratch else IMAGE_SIZE),
                   patience=settings.patience or (epochs if scratch else 3))


# from scratch within 5 minutes on 2 cores: 30 epochs and no self-training (8 unsorted files
# give it too little to learn from, for twice the training time); training is seeded and
# deterministic, so every run on a machine gives the same result
DEMO_SETTINGS = RunSettings(weights="none", epochs=30, self_training_rounds=0)


def make_demo_corpus(root: str, seed: int = 0, per_language: int = 48) -> tuple[str, str]:
    """root/labelled/<language>/..., root/unsorted/... (+ a file that is not audio) and
    root/truth.csv. Speech is synthesized from generated pseudo-text, nothing committed."""
    labelled, unsorted = os.path.join(root, "labelled"), os.path.join(root, "unsorted")
    if not os.path.isdir(labelled):
        # many short recordings rather than a few long ones: more voices for the same audio
        synth.labelled_corpus(labelled + ".tmp", per_language, (10, 20), seed=seed)
        os.replace(labelled + ".tmp", labelled)
    if not os.path.isdir(unsorted):
        tmp = unsorted + ".tmp"
        rng = np.random.default_rng(seed + 1)
        rows = []
        for i in range(8):
            language = list(synth.LANGUAGES)[i % 2]
            fmt = synth.FORMAT_MIX[i % len(synth.FORMAT_MIX)]
            name = f"{'tape' if i < 4 else 'radio'}-{i:02d}.{fmt.ext}"
            folder = "1987" if i % 3 else "1994"
            samples = synth.recording(language, float(rng.uniform(20, 45)), rng)
            synth.write(os.path.join(tmp, folder, name), samples, synth.ESPEAK_RATE, fmt.rate, fmt.channels)
            rows.append((f"{folder}/{name}", language))
        with open(os.path.join(tmp, "inventory-notes.txt"), "w") as f:
            f.write("Not audio: langsort reports it as an error row and carries on.\n")
        os.replace(tmp, unsorted)
        with open(os.path.join(root, "truth.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "language"])
            writer.writerows(rows)
    return labelled, unsorted


def demo(out: str, progress: bool = True, echo=print) -> RunResult:
    corpus = os.path.join(out, "corpus")
    labelled, unsorted = make_demo_corpus(corpus)
    echo(f"demo corpus: {labelled} (labelled), {unsorted} (unsorted)")
    return run(labelled, unsorted, out, DEMO_SETTINGS, progress=progress, echo=echo,
               truth_csv=os.path.join(corpus, "truth.csv"))
