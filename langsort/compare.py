"""`langsort compare`: the published experiment (MobileNetV2 vs ResNet50 vs ResNet152) as one
command.

Each configuration (backbone x image size x learning rate) is a Ray Tune trial that runs its
own Ray Train fit on the same prepared data. The split by recording is seeded, so every trial
trains, validates and tests on the same recordings and the comparison is fair. Trials reserve
their CPUs through Ray Train's scaling config and Tune runs only as many at once as the
cluster holds, so they do not starve each other. After the trials every model is exported to
ONNX and its labelling throughput is timed one model at a time, with the trials finished. The best
model is chosen on validation figures (never on test) and registered.

OUT/
  trials/<trial>/    a MODEL_DIR per trial, with model.onnx (a finished trial is kept on re-run)
  comparison.json    every figure of every trial
  comparison.png     accuracy and training time side by side
  comparison.html    the table and the plot
"""

from __future__ import annotations

import html
import itertools
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from langsort.model import MODEL_FILE
from langsort.train import loop

TRIALS_DIR = "trials"
RESULT_JSON = "comparison.json"
PLOT = "comparison.png"
HTML_NAME = "comparison.html"


@dataclass(frozen=True)
class Trial:
    backbone: str
    image_size: int | None  # None: the prepared grid's width
    learning_rate: float

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.image_size or 'grid'}px-lr{self.learning_rate:g}"


def trial_grid(backbones: list[str], image_sizes: list[int | None], learning_rates: list[float]) -> list[Trial]:
    from langsort.train.backbones import check_backbone

    for name in backbones:
        check_backbone(name)
    return [Trial(*combo) for combo in itertools.product(backbones, image_sizes, learning_rates)]


def trials_at_once(n_trials: int, cpus: int, requested: int | None = None) -> tuple[int, int]:
    """(trials running together, CPUs each trial's single worker reserves)."""
    together = max(1, min(n_trials, requested or cpus, cpus))
    return together, max(1, cpus // together)


def _finished(model_dir: str) -> bool:
    return all(os.path.isfile(os.path.join(model_dir, name)) for name in (loop.MODEL_JSON, MODEL_FILE))


def run_trial(config: dict) -> dict:
    """Ray Tune function trainable: one Ray Train fit, then its ONNX export."""
    import ray.data

    from langsort.export import export

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # as in the driver (runtime.init_ray)
    ray.data.DataContext.get_current().enable_progress_bars = False

    trial = Trial(**config["trial"])
    options = replace(loop.TrainOptions(**config["options"]), backbone=trial.backbone,
                      image_size=trial.image_size, learning_rate=trial.learning_rate,
                      require_learning=False)  # a trial that did not learn is a result to show
    model_dir = os.path.join(config["out"], TRIALS_DIR, trial.name)
    if not _finished(model_dir):
        result = loop.fit(config["prepared"], model_dir, options, progress=False)
        export(model_dir)
        print(f"trial {trial.name}: trained in {result.seconds / 60:.1f} min, exported", flush=True)
    return {"model_dir": model_dir}


def onnx_clips_per_second(onnx_path: str, grids: np.ndarray, threads: int, seconds: float = 2.0) -> float:
    """Labelling speed of an exported model: batches of 16 real grids through ONNX Runtime."""
    from langsort.model import read_model_info
    from langsort.predict import OnnxPredictor

    predictor = OnnxPredictor(read_model_info(onnx_path), threads=threads)
    batch = np.resize(grids, (16, *grids.shape[1:])).astype(np.float32)
    predictor.predict(batch)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)


def trial_row(trial: Trial, model_dir: str, threads: int) -> dict:
    meta = loop.read_model_meta(model_dir)
    with open(os.path.join(model_dir, loop.METRICS)) as f:
        metrics = json.load(f)
    sample = np.load(os.path.join(model_dir, loop.SAMPLE))["grids"]
    test, validation = metrics["test"], metrics["validation"]
    return dict(
        trial=trial.name, backbone=trial.backbone, image_size=meta.image_size, learning_rate=trial.learning_rate,
        parameters=meta.details["parameters"], training_minutes=meta.details["training_seconds"] / 60, epochs_run=len(metrics["history"]),
        clip_accuracy=test["clip"]["accuracy"], file_accuracy=test["file"]["accuracy"], macro_f1=test["clip"]["macro_f1"],
        recall={label: c["recall"] for label, c in test["clip"]["per_class"].items()},
        validation_macro_f1=validation["clip"]["macro_f1"], validation_accuracy=validation["clip"]["accuracy"],
        onnx_clips_per_second=onnx_clips_per_second(os.path.join(model_dir, MODEL_FILE), sample, threads),
        model=os.path.join(model_dir, MODEL_FILE),
    )


def best_of(rows: list[dict]) -> dict:
    """Chosen on validation (test figures stay honest), then the faster to train."""
    return max(rows, key=lambda r: (r["validation_macro_f1"], r["validation_accuracy"], -r["training_minutes"]))


@dataclass
class Comparison:
    rows: list[dict]
    best: dict
    registered: str | None
    html_path: str
    seconds: float


def compare(prepared_dir: str, out: str, trials: list[Trial], options: loop.TrainOptions = loop.TrainOptions(),
            concurrent: int | None = None, register_as: str | None = None, echo=print) -> Comparison:
    from ray import tune

    from langsort.registry import register
    from langsort.runtime import cluster_cpus

    started = time.perf_counter()
    cpus = cluster_cpus()
    together, cpus_per_trial = trials_at_once(len(trials), cpus, concurrent)
    options = replace(options, workers=1, cpus_per_worker=cpus_per_trial)
    echo(f"{len(trials)} trials, {together} at a time, {cpus_per_trial} CPU(s) each: "
         + ", ".join(t.name for t in trials))

    base = dict(prepared=os.path.abspath(prepared_dir), out=os.path.abspath(out), options=asdict(options))
    tuner = tune.Tuner(
        # the trial process only drives its fit: it asks for a little memory (Tune needs some
        # request) and no CPU, so the CPUs all go to the Ray Train workers
        tune.with_resources(run_trial, {"CPU": 0, "memory": 256 * 1024**2}),
        param_space={**base, "trial": tune.grid_search([asdict(t) for t in trials])},
        tune_config=tune.TuneConfig(max_concurrent_trials=together),
        run_config=tune.RunConfig(name="langsort-compare", storage_path=os.path.join(os.path.abspath(out), "tune"),
                                  verbose=0),
    )
    results = tuner.fit()
    failed = [r for r in results if r.error]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(trials)} trials failed; first: {failed[0].error}")

    rows = [trial_row(t, os.path.join(out, TRIALS_DIR, t.name), threads=cpus) for t in trials]
    best = best_of(rows)
    registered = register(best["model"], register_as) if register_as else None
    seconds = time.perf_counter() - started
    with open(os.path.join(out, RESULT_JSON), "w") as f:
        json.dump(dict(rows=rows, best=best["trial"], registered=registered, seconds=seconds,
                       options=asdict(options)), f, indent=2)
    html_path = write_html(rows, best, out)
    return Comparison(rows=rows, best=best, registered=registered, html_path=html_path, seconds=seconds)


COLUMNS = ["trial", "params", "train min", "test clip acc", "file acc", "macro-F1", "recall", "val F1", "ONNX clips/s"]


def table(rows: list[dict]) -> list[list[str]]:
    return [[r["trial"], f"{r['parameters'] / 1e6:.1f}M", f"{r['training_minutes']:.1f}", f"{r['clip_accuracy']:.3f}",
             f"{r['file_accuracy']:.3f}", f"{r['macro_f1']:.3f}",
             " ".join(f"{label} {v:.2f}" for label, v in r["recall"].items()), f"{r['validation_macro_f1']:.3f}",
             f"{r['onnx_clips_per_second']:.0f}"] for r in rows]


def render_text(rows: list[dict], best: dict) -> str:
    cells = [COLUMNS] + table(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in cells]
    return "\n".join(lines + [f"best on validation: {best['trial']}"])


def write_html(rows: list[dict], best: dict, out: str) -> str:
    from langsort.plots import figure_png

    def draw(ax):
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["clip_accuracy"] for r in rows], 0.4, label="test clip accuracy")
        ax.bar(x + 0.2, [r["file_accuracy"] for r in rows], 0.4, label="test file accuracy")
        ax.set_xticks(x, [r["trial"] for r in rows], rotation=15, fontsize=7)
        ax.set(ylim=(0, 1.05), ylabel="accuracy", title="backbones on the same grouped split")
        minutes = ax.twinx()
        minutes.plot(x, [r["training_minutes"] for r in rows], "ko-", label="training minutes")
        minutes.set_ylabel("training minutes")
        ax.legend(loc="lower left", fontsize=7)

    plot = figure_png(draw, size=(7, 3.6), save_to=os.path.join(out, PLOT))
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table(rows))
    path = os.path.join(out, HTML_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>langsort compare</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body><h1>Backbone comparison</h1><p>Test figures on the grouped test split; best chosen on validation:
<b>{html.escape(best['trial'])}</b>.</p><table><tr>{head}</tr>{body}</table>{plot}</body></html>""")
    return path
