"""The `langsort` command line: thin Typer commands over the library modules."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsort.corpus import CorpusError
from langsort.train.backbones import WeightsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find out which language is spoken in every recording of an audio archive.")
console = Console(stderr=True)

ADDRESS = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local Ray.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress display.")


class UserError(Exception):
    """Wrong input from the user: reported as one line, exit status 2."""


USER_ERRORS = (UserError, CorpusError, WeightsError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


def user_errors(command):
    """Turn expected failures into one line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            console.print("interrupted: finished work is kept; run the same command again to continue")
            raise typer.Exit(130)

    return wrapper


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
):
    """Find out which language is spoken in every recording of an audio archive."""
    if version:
        from langsort import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.command()
@user_errors
def prepare(
    input: Path = typer.Argument(..., help="Folder of audio; LABELLED/<language>/... gives labels."),
    out: Path = typer.Option(..., "--out", help="Output folder for files.parquet, clips.parquet, prepared.json."),
    min_seconds: float = typer.Option(3.0, help="Shortest clip."),
    max_seconds: float = typer.Option(15.0, help="Longest clip; longer speech is divided."),
    image_size: int = typer.Option(224, help="Time columns of each spectrogram (the CNN image side)."),
    augment: int = typer.Option(0, help="Perturbed copies of each labelled recording, for training."),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="Take the first folder level as the label."),
    save_png: bool = typer.Option(False, "--save-png", help="Also write each spectrogram as a PNG under OUT/png."),
    seed: int = typer.Option(0, help="Seed for augmentation."),
    address: Optional[str] = ADDRESS,
    quiet: bool = QUIET,
):
    """Split every recording into 3-15 s speech clips and turn each into a log-mel spectrogram."""
    from langsort import prepare as stage
    from langsort.features import SpectrogramParams
    from langsort.runtime import init_ray
    from langsort.segment import SegmentParams

    config = stage.PrepareConfig(
        spectrogram=SpectrogramParams(frames=image_size),
        segment=SegmentParams(min_seconds=min_seconds, max_seconds=max_seconds),
        augment=augment, seed=seed,
    )
    _check_out_not_inside(input, out)
    init_ray(address)
    summary = stage.prepare(str(input), str(out), config, labelled=labels, save_png=save_png, progress=not quiet)
    typer.echo(
        f"prepared {summary.files} files ({summary.audio_seconds / 3600:.2f} h): {summary.ok} ok, "
        f"{summary.unknown} without usable speech, {summary.errors} unreadable; {summary.clips} clips -> {out}"
    )


def _check_out_not_inside(input: Path, out: Path) -> None:
    if not input.exists():
        raise UserError(f"input folder not found: {input}")
    if out.resolve().is_relative_to(input.resolve()):
        raise UserError(f"output folder {out} is inside the input folder {input}: choose one outside it")




@app.command()
@user_errors
def train(
    prepared: Path = typer.Argument(..., help="Folder written by `langsort prepare` on a LABELLED tree."),
    out: Path = typer.Option(..., "--out", help="MODEL_DIR for weights, metrics.json, plots."),
    backbone: str = typer.Option("mobilenet_v2", help="mobilenet_v2, resnet50 or resnet152."),
    weights: str = typer.Option("imagenet", help="imagenet (downloads), none (from scratch) or a local weights file."),
    epochs: int = typer.Option(12, min=1),
    batch_size: int = typer.Option(32, min=1),
    image_size: Optional[int] = typer.Option(None, help="CNN input side; default: the prepared grid width."),
    workers: Optional[int] = typer.Option(None, min=1, help="Ray Train workers; default one per two CPUs."),
    learning_rate: float = typer.Option(1e-3),
    seed: int = typer.Option(0),
    address: Optional[str] = ADDRESS,
    quiet: bool = QUIET,
):
    """Fit the backbone on the prepared spectrograms with Ray Train (split by recording)."""
    from langsort.runtime import init_ray
    from langsort.train.loop import TrainOptions, fit

    options = TrainOptions(backbone=backbone, weights=weights, epochs=epochs, batch_size=batch_size,
                           image_size=image_size, workers=workers, learning_rate=learning_rate, seed=seed)
    _check_prepared(prepared)
    init_ray(address)
    result = fit(str(prepared), str(out), options, progress=not quiet)
    test = result.metrics["test"]
    typer.echo(
        f"trained {backbone} in {result.seconds / 60:.1f} min: test clip accuracy {test['clip']['accuracy']:.3f}, "
        f"file accuracy {test['file']['accuracy']:.3f}, macro-F1 {test['clip']['macro_f1']:.3f} -> {out}"
    )


def _check_prepared(prepared: Path) -> None:
    from langsort.prepare import PREPARED_META

    if not (prepared / PREPARED_META).is_file():
        raise UserError(f"{prepared} is not a prepared dataset (no {PREPARED_META}): run langsort prepare first")
