"""The `langsort` command line: thin Typer commands over the library modules."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsort import selftrain as selftrain_defaults
from langsort import train as train_defaults
from langsort.aggregate import DEFAULT_THRESHOLD
from langsort.annotate import AnnotationFormat
from langsort.errors import LangsortError
from langsort.model import MAX_WIDTH, MIN_WIDTH
from langsort.timeline import TimelineParams
from langsort.train.backbones import BACKBONES

# plain help (no rich panels): flags without a `<bool>` type column, readable when redirected
HELP = dict(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
            context_settings={"help_option_names": ["-h", "--help"]})
app = typer.Typer(**HELP, help="Find out which language is spoken in every recording of an audio archive.")
console = Console(stderr=True)

ADDRESS = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local Ray.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress display.")
CPUS = typer.Option(None, "--cpus", min=1, help="CPUs the local Ray (or a small label job's workers) may use; "
                                                 "default all of them.")
PREPARED = typer.Argument(..., help="Folder written by `langsort prepare` on a LABELLED tree.")
EPOCHS = typer.Option(train_defaults.EPOCHS, min=1, help="Passes over the training clips (early stopping may end sooner).")
BATCH_SIZE = typer.Option(train_defaults.BATCH_SIZE, min=1, help="Spectrograms per training step.")
LEARNING_RATE = typer.Option(1e-3, min=0.0, help="Adam learning rate.")
SEED = typer.Option(0, help="Seed of the split by recording and of the training; same seed, same split.")
BACKBONE = typer.Option("mobilenet_v2", metavar="[" + "|".join(BACKBONES) + "]", help="CNN of the method.")
WIDTH = typer.Option(1.0, min=MIN_WIDTH, max=MAX_WIDTH, help="MobileNetV2's width multiplier (channels per layer; below 1 trains "
                     "faster on little data).")
WEIGHTS = typer.Option(train_defaults.INITIAL_WEIGHTS, metavar="[auto|imagenet|none|FILE]",
                       help="Initial weights: auto (ImageNet when it can be had, else from scratch, saying which), "
                            "imagenet (downloads), none (from scratch) or a local weights file.")
ROUNDS_HELP = ("Self-training rounds on the unlabelled archive (pseudo-label its confidently labelled stretches, "
               f"train again); the last {selftrain_defaults.AVERAGED_STUDENTS} rounds' students are averaged into "
               "the model; 0: the labelled recordings alone.")
ROUNDS = typer.Option(selftrain_defaults.ROUNDS, min=0, help=ROUNDS_HELP)
RUN_ROUNDS = typer.Option(selftrain_defaults.RUN_ROUNDS, min=0, help=ROUNDS_HELP)
TEACHERS_HELP = ("Models trained from successive seeds whose average labels the archive in the first self-training "
                 "round (one model's mistakes are its seed's draw).")
TEACHERS = typer.Option(selftrain_defaults.TEACHERS, min=1, help=TEACHERS_HELP)
RUN_TEACHERS = typer.Option(selftrain_defaults.RUN_TEACHERS, min=1, help=TEACHERS_HELP)
MIN_CONFIDENCE = typer.Option(selftrain_defaults.MIN_CONFIDENCE, min=0.0, max=1.0,
                              help="Confidence a stretch of the archive needs to be pseudo-labelled.")
THRESHOLD = typer.Option(DEFAULT_THRESHOLD, min=0.0, max=1.0, help="Below this confidence a file is unknown.")


class UserError(LangsortError):
    """Wrong input from the user: reported as one line, exit status 2."""


def user_errors(command):
    """Turn expected failures into one line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LangsortError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("interrupted: finished work is kept; run the same command again to continue")
            raise typer.Exit(130) from None

    return wrapper


def _print_version(value: bool) -> None:
    if value:
        from langsort import __version__

        typer.echo(f"langsort {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Find out which language is spoken in every recording of an audio archive."""


@app.command()
@user_errors
def prepare(
    input: Path = typer.Argument(..., help="Folder of audio; LABELLED/<language>/... gives labels."),
    out: Path = typer.Option(..., "--out", help="Output folder for files.parquet, clips.parquet, prepared.json."),
    min_seconds: float = typer.Option(3.0, help="Shortest clip."),
    max_seconds: float = typer.Option(15.0, help="Longest clip; longer speech is divided."),
    image_size: int = typer.Option(train_defaults.IMAGE_SIZE, help="Time columns of each spectrogram (the CNN image side)."),
    augment: int = typer.Option(0, help="Perturbed copies of each labelled recording, for training."),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="Take the first folder level as the label."),
    save_png: bool = typer.Option(False, "--save-png", help="Also write each spectrogram as a PNG under OUT/png."),
    seed: int = typer.Option(0, help="Seed for augmentation."),
    reviewed: Optional[str] = typer.Option(None, "--reviewed", help="MANIFESTS where people reviewed recordings "
                                           "(langsort review): add their decisions as labelled recordings."),
    address: Optional[str] = ADDRESS,
    cpus: Optional[int] = CPUS,
    quiet: bool = QUIET,
):
    """Split every recording into 3-15 s speech clips and turn each into a log-mel spectrogram."""
    from langsort import prepare as stage
    from langsort.features import SpectrogramParams
    from langsort.parts import input_root_of
    from langsort.reviews import training_inputs
    from langsort.runtime import init_ray
    from langsort.segment import SegmentParams

    config = stage.PrepareConfig(
        spectrogram=SpectrogramParams(frames=image_size),
        segment=SegmentParams(min_seconds=min_seconds, max_seconds=max_seconds),
        augment=augment, seed=seed,
    )
    started = time.perf_counter()
    _check_out_not_inside(input, out)
    _check_out_folder(str(out))
    extra = []
    if reviewed:
        extra = training_inputs(reviewed, input_root_of(reviewed))
        typer.echo(f"adding {len(extra)} reviewed recording(s) from {reviewed}")
    if not extra:  # reviewed recordings alone are enough to prepare
        _check_input(str(input))
    init_ray(address, _local_cpus(address, cpus))
    summary = stage.prepare(str(input), str(out), config, labelled=labels, save_png=save_png, progress=not quiet,
                            extra=extra)
    typer.echo(
        f"prepared {summary.files} files ({summary.audio_seconds / 3600:.2f} h): {summary.ok} ok, "
        f"{summary.unknown} without usable speech, {summary.errors} unreadable; {summary.clips} clips -> {out} "
        f"in {time.perf_counter() - started:.0f} s"
    )
    typer.echo(f"next: langsort train {out} --out MODEL_DIR")


def _check_input(input: str) -> None:
    """The input holds audio: an empty or mistyped folder is a user error, found before Ray starts."""
    from langsort.corpus import has_audio

    if not has_audio(input):
        raise UserError(f"no audio files under {input} (looked for .wav, .flac, .mp3, .ogg and the like): "
                        "check the path")


def _check_out_folder(out: str, option: str = "--out") -> None:
    """The output names a folder langsort can create or write to, checked before any work."""
    from langsort import storage

    if storage.is_remote(out):
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{option} {out} is a file: give a folder (it is created when missing)")
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{option} {out} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {out} cannot be written: no permission in {existing}")


def _local_cpus(address: Optional[str], cpus: Optional[int]) -> Optional[int]:
    if cpus and (address or os.environ.get("RAY_ADDRESS")):
        raise UserError("--cpus caps the local Ray only: a cluster's CPUs are set where it is started")
    return cpus


def _check_out_not_inside(input, out) -> None:
    from langsort import storage

    if storage.is_remote(str(input)) or storage.is_remote(str(out)):
        return  # object stores: the input listing is taken before anything is written
    input, out = Path(input), Path(out)
    if not input.exists():
        raise UserError(f"input folder not found: {input}")
    if out.resolve().is_relative_to(input.resolve()):
        raise UserError(f"output folder {out} is inside the input folder {input}: choose one outside it")




@app.command()
@user_errors
def train(
    prepared: Path = PREPARED,
    out: Path = typer.Option(..., "--out", help="MODEL_DIR for weights, metrics.json, plots."),
    backbone: str = BACKBONE,
    weights: str = WEIGHTS,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    image_size: Optional[int] = typer.Option(None, help="CNN input side; default: the prepared grid width."),
    width: float = WIDTH,
    workers: Optional[int] = typer.Option(None, min=1, help="Ray Train workers; default one per two CPUs."),
    learning_rate: float = LEARNING_RATE,
    seed: int = SEED,
    unlabelled: Optional[str] = typer.Option(None, "--unlabelled", help="An unlabelled archive to learn from too "
                                             "(self-training: its confidently labelled stretches join the training side)."),
    rounds: int = ROUNDS,
    teachers: int = TEACHERS,
    min_confidence: float = MIN_CONFIDENCE,
    address: Optional[str] = ADDRESS,
    quiet: bool = QUIET,
):
    """Fit the backbone on the prepared spectrograms with Ray Train (split by recording)."""
    from langsort.runtime import init_ray
    from langsort.selftrain import SelfTraining, fit_with_unlabelled
    from langsort.train.backbones import check_backbone, check_weights
    from langsort.train.loop import TrainOptions, fit

    check_backbone(backbone)
    check_weights(weights)
    options = TrainOptions(backbone=backbone, weights=weights, epochs=epochs, batch_size=batch_size,
                           image_size=image_size, width=width, workers=workers, learning_rate=learning_rate, seed=seed)
    _check_prepared(prepared)
    _check_out_folder(str(out))
    if unlabelled:
        _check_input(unlabelled)
    init_ray(address)
    started = time.perf_counter()
    if unlabelled and rounds:
        plan = SelfTraining(unlabelled, rounds, min_confidence, teachers)
        metrics = fit_with_unlabelled(str(prepared), str(out), options, plan, progress=not quiet, echo=typer.echo)
    else:
        metrics = fit(str(prepared), str(out), options, progress=not quiet).metrics
    test = metrics["test"]
    typer.echo(
        f"trained {backbone} in {(time.perf_counter() - started) / 60:.1f} min: test clip accuracy {test['clip']['accuracy']:.3f}, "
        f"file accuracy {test['file']['accuracy']:.3f}, macro-F1 {test['clip']['macro_f1']:.3f} -> {out}"
    )


def _check_prepared(prepared: Path) -> None:
    from langsort.prepare import PREPARED_META

    if not (prepared / PREPARED_META).is_file():
        raise UserError(f"{prepared} is not a prepared dataset (no {PREPARED_META}): run langsort prepare first")


@app.command()
@user_errors
def export(
    model_dir: Path = typer.Argument(..., help="MODEL_DIR written by `langsort train`."),
    out: Optional[Path] = typer.Option(None, "--out", help="ONNX file to write; default MODEL_DIR/model.onnx."),
    quantize: Optional[str] = typer.Option(None, metavar="[int8]",
                                           help="Also write a static-QDQ int8 copy (FILE.int8.onnx)."),
    register: Optional[str] = typer.Option(None, help="Also add the model to the registry (models/NAME/)."),
):
    """Export to ONNX with labels and spectrogram parameters inside, checked against the trained model."""
    from langsort import export as stage

    if quantize not in (None, "int8"):
        raise UserError(f"unknown --quantize {quantize!r}: the only choice is int8")
    result = stage.export(str(model_dir), str(out) if out else None, quantize)
    typer.echo(f"exported {result.path} (sha256 {result.sha256[:12]}), max difference to the trained model "
               f"{result.max_difference:.1e} on validation spectrograms")
    if result.quantized_path:
        typer.echo(f"int8: {result.quantized_path}, agrees with float32 on {result.quantized_agreement:.1%} of "
                   f"validation clips (max probability difference {result.quantized_max_difference:.3f})")
    if register:
        from langsort.registry import register as add

        typer.echo(f"registered as {register}: {add(result.path, register)}")


@app.command()
@user_errors
def compare(
    prepared: Path = PREPARED,
    out: Path = typer.Option(..., "--out", help="Folder for the trials, comparison.json/.png/.html."),
    backbones: str = typer.Option("mobilenet_v2,resnet50,resnet152", help="Comma-separated backbones."),
    image_sizes: str = typer.Option("", help="Comma-separated image sides; default the prepared grid width."),
    learning_rates: str = typer.Option("0.001", help="Comma-separated learning rates."),
    weights: str = WEIGHTS,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    seed: int = typer.Option(0, help="Seed of the split and the training; the same for every trial."),
    concurrent: Optional[int] = typer.Option(None, min=1, help="Trials at once; default as many as the CPUs hold."),
    register: Optional[str] = typer.Option(None, help="Registry name for the best model; default the OUT folder's name."),
    address: Optional[str] = ADDRESS,
):
    """Train one model per backbone (x image size x learning rate) as Ray Tune trials and compare them."""
    from langsort import compare as stage
    from langsort.runtime import init_ray
    from langsort.train.backbones import check_weights
    from langsort.train.loop import TrainOptions

    def listed(text: str, kind):
        return [kind(part) for part in text.split(",") if part.strip()]

    try:
        trials = stage.trial_grid(listed(backbones, str.strip), listed(image_sizes, int) or [None],
                                  listed(learning_rates, float))
    except ValueError as exc:
        raise UserError(f"{exc} (lists are comma-separated)") from None
    check_weights(weights)
    _check_prepared(prepared)
    _check_out_folder(str(out))
    init_ray(address)
    result = stage.compare(str(prepared), str(out), trials,
                           TrainOptions(weights=weights, epochs=epochs, batch_size=batch_size, seed=seed),
                           concurrent=concurrent, register_as=register or Path(out).resolve().name, echo=typer.echo)
    typer.echo(stage.render_text(result.rows, result.best))
    typer.echo(f"registered {result.registered}; report {result.html_path} ({result.seconds / 60:.1f} min)")


models_app = typer.Typer(**HELP, help="The model registry in models/ (or $LANGSORT_MODELS).")
app.add_typer(models_app, name="models")


@models_app.command("list")
@user_errors
def models_list():
    """Every registered model with its card: labels, backbone, metrics, date."""
    from langsort.registry import list_models, registry_dir

    found = list_models()
    if not found:
        typer.echo(f"no models in {registry_dir()}/ (add one with `langsort export MODEL_DIR --register NAME`)")
    for name, info in found:
        metrics = info.meta.metrics
        typer.echo(f"{name}: {', '.join(info.labels)} | {info.meta.backbone} {info.meta.image_size}px | "
                   f"test clip acc {metrics.get('clip_accuracy', float('nan')):.3f}, file acc "
                   f"{metrics.get('file_accuracy', float('nan')):.3f} | trained {info.meta.details.get('trained_at', '?')} | "
                   f"sha256 {info.sha256[:12]}")


@app.command()
@user_errors
def label(
    input: str = typer.Argument(..., help="Folder of audio to label (any tree); a path or s3:// / gs:// URI."),
    model: str = typer.Option(..., "--model", help="An .onnx file from `langsort export` (path or URI), or a registry name."),
    out: str = typer.Option(..., "--out", help="MANIFESTS folder for files.parquet and clips.parquet (path or URI)."),
    threshold: float = THRESHOLD,
    batch_size: int = typer.Option(32, min=1, help="Clips per ONNX Runtime call."),
    min_share: float = typer.Option(TimelineParams.min_share, min=0.0, max=1.0,
                                    help="A second language with at least this share of the speech makes a file mixed."),
    address: Optional[str] = ADDRESS,
    cpus: Optional[int] = CPUS,
    quiet: bool = QUIET,
):
    """Label every file, clip and language segment with ONNX Runtime on Ray Data (a small job without a cluster
    runs in a few local processes instead, as Ray's start-up would take longer); resumable, idempotent."""
    from langsort import label as stage
    from langsort.lock import ManifestLock
    from langsort.model import read_model_info
    from langsort.predict import check_runs
    from langsort.parts import STATE_DIR
    from langsort.registry import resolve

    started = time.perf_counter()
    _check_out_not_inside(input, out)
    _check_input(input)
    _check_out_folder(out)
    cpus = _local_cpus(address, cpus)
    model = resolve(model)
    check_runs(read_model_info(model))  # a bad --model is a one-line error before Ray starts
    with ManifestLock(out, STATE_DIR):  # a second run into --out stops here, before Ray starts
        # a small job with no --address runs without Ray (its start-up would be most of the time)
        summary = stage.label(input, model, out, threshold=threshold, batch_size=batch_size,
                              progress=not quiet, min_share=min_share, executor="auto", address=address,
                              cpus=cpus)
    counts = ", ".join(f"{v} {k.removeprefix('language:')}" for k, v in sorted(summary.counts.items()))
    typer.echo(f"labelled {summary.files} files ({summary.labelled_now} now, {summary.reused} already done) in "
               f"{time.perf_counter() - started:.0f} s: {counts} -> {out}")
    typer.echo(f"next: langsort report {out} | langsort sort {out} --dest SORTED | langsort review {out}")


@app.command("sort")
@user_errors
def sort_command(
    manifests: Path = typer.Argument(..., help="MANIFESTS folder written by `langsort label`."),
    dest: Path = typer.Option(..., "--dest", help="Destination: DEST/<language>/<relative path>."),
    mode: str = typer.Option("copy", metavar="[copy|link|move]",
                             help="copy leaves the archive as it is; link makes hard links; move empties it."),
    input: Optional[Path] = typer.Option(None, "--input", help="The labelled folder, if it moved since labelling."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, touch nothing."),
    mixed: str = typer.Option("folder", "--mixed", metavar="[folder|dominant]",
                              help="Files with two languages: 'folder' puts them in DEST/_mixed/, 'dominant' with their main language."),
):
    """Sort the archive into one folder per language (never overwrites, never loses a file)."""
    from langsort.sort import sort_archive

    _check_out_folder(str(dest), "--dest")
    report = sort_archive(str(manifests), str(dest), mode, str(input) if input else None, dry_run, typer.echo,
                          mixed=mixed)
    folders = ", ".join(f"{n} {f}" for f, n in sorted(report.by_folder.items()))
    verb = "would sort" if dry_run else f"sorted ({mode})"
    typer.echo(f"{verb}: {folders}; {report.done} done, {report.already} already in place, "
               f"{len(report.refused)} refused, {len(report.not_audio)} not audio (left where they are) -> {dest}")
    for path, why in report.refused[:20]:
        typer.echo(f"  refused {path}: {why}")
    if report.refused:
        raise typer.Exit(1)


@app.command()
@user_errors
def annotate(
    manifests: str = typer.Argument(..., help="MANIFESTS folder written by `langsort label` (path or URI)."),
    to: AnnotationFormat = typer.Option(..., "--to", help="eaf (ELAN), textgrid (Praat), vtt (players) or csv."),
    out: Path = typer.Option(..., "--out", help="Folder for OUT/<path>.<ext>, one file per labelled recording."),
):
    """Each recording's language timeline as an ELAN, Praat, WebVTT or CSV annotation file."""
    from langsort.annotate import annotate as write_annotations

    written = write_annotations(manifests, to, str(out))
    typer.echo(f"wrote {len(written)} {to.value} files -> {out}")


@app.command()
@user_errors
def report(
    manifests: Path = typer.Argument(..., help="MANIFESTS folder written by `langsort label`."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="CSV with columns file,language for accuracy."),
):
    """Summary a person reads: counts, hours per language, confidence, confusion with --truth."""
    from langsort.report import write

    text, path = write(str(manifests), str(truth) if truth else None)
    typer.echo(text)
    typer.echo(f"HTML report: {path}")


@app.command()
@user_errors
def review(
    manifests: str = typer.Argument(..., help="MANIFESTS folder written by `langsort label` (path or URI)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; any but loopback requires the printed token."),
    port: int = typer.Option(8765, min=1, max=65535, help="Port to listen on."),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open a browser."),
    input: Optional[str] = typer.Option(None, "--input", help="The labelled folder, if it moved since labelling."),
):
    """Listen to recordings, see their timelines and record corrections in a local web app."""
    from langsort.review.server import serve

    serve(manifests, host, port, open_browser=not no_open, input_root=input, echo=typer.echo)


def _print_run(result) -> None:
    typer.echo(result.report_text)
    typer.echo(f"\nmodel:          {result.model}\nmanifests:      {result.manifests}\n"
               f"sorted archive: {result.sorted_dir}\nreport:         {result.report_html}")


@app.command()
@user_errors
def run(
    labelled: Path = typer.Argument(..., help="LABELLED/<language>/... training recordings."),
    unsorted: Path = typer.Argument(..., help="The archive to label and sort."),
    out: Path = typer.Option(..., "--out", help="Everything goes here: prepared/, model/, manifests/, sorted/."),
    backbone: str = BACKBONE,
    weights: str = WEIGHTS,
    epochs: Optional[int] = typer.Option(None, min=1, help=f"Passes over the training clips; default "
                                         f"{train_defaults.EPOCHS} with ImageNet weights, {train_defaults.SCRATCH_EPOCHS} from scratch."),
    image_size: Optional[int] = typer.Option(None, help=f"Time columns of each spectrogram and the CNN image side; default "
                                             f"{train_defaults.IMAGE_SIZE} with ImageNet weights, "
                                             f"{train_defaults.SCRATCH_IMAGE_SIZE} from scratch."),
    width: float = WIDTH,
    threshold: float = THRESHOLD,
    rounds: int = RUN_ROUNDS,
    teachers: int = RUN_TEACHERS,
    min_confidence: float = MIN_CONFIDENCE,
    address: Optional[str] = ADDRESS,
    quiet: bool = QUIET,
):
    """prepare -> train (with self-training on UNSORTED) -> export -> label -> sort, end to end; re-run to resume."""
    from langsort.pipeline import RunSettings
    from langsort.pipeline import run as run_pipeline
    from langsort.runtime import init_ray
    from langsort.train.backbones import check_backbone, check_weights

    check_backbone(backbone)
    check_weights(weights)
    for folder in (labelled, unsorted):
        _check_out_not_inside(folder, out)
        _check_input(str(folder))
    _check_out_folder(str(out))
    init_ray(address)
    settings = RunSettings(backbone=backbone, weights=weights, epochs=epochs, image_size=image_size, width=width,
                           threshold=threshold, self_training_rounds=rounds,
                           teachers=teachers, min_confidence=min_confidence)
    _print_run(run_pipeline(str(labelled), str(unsorted), str(out), settings, progress=not quiet, echo=typer.echo))


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("langsort-demo"), "--out", help="Folder for the demo corpus and results."),
    address: Optional[str] = ADDRESS,
    quiet: bool = QUIET,
):
    """Synthesize a small Spanish/Maya corpus (espeak-ng) and run the whole pipeline on it."""
    from langsort.pipeline import demo as run_demo
    from langsort.runtime import init_ray
    from langsort.synth import require_espeak

    require_espeak()
    _check_out_folder(str(out))
    init_ray(address)
    started = time.perf_counter()
    result = run_demo(str(out), progress=not quiet, echo=typer.echo)
    _print_run(result)
    typer.echo(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min")
