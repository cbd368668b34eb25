"""User errors: one line saying what is wrong and how to fix it, exit status 2, no traceback."""

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from langsort import synth
from langsort.cli import app


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


def assert_one_line_error(code, output, *words):
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert "Traceback" not in output
    for word in words:
        assert word in lines[0], output


def test_missing_input_folder(run, tmp_path):
    assert_one_line_error(*run("prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")), "not found")


def test_output_inside_the_input(run, tmp_path):
    assert_one_line_error(*run("prepare", str(tmp_path), "--out", str(tmp_path / "out")), "inside the input")


def test_unknown_backbone(run, tmp_path):
    assert_one_line_error(*run("train", str(tmp_path), "--out", str(tmp_path / "m"), "--backbone", "vgg"),
                          "unknown backbone", "mobilenet_v2")


def test_missing_weights_file(run, tmp_path):
    assert_one_line_error(*run("train", str(tmp_path), "--out", str(tmp_path / "m"), "--weights", "w.h5"),
                          "weights file not found")


def test_not_a_prepared_dataset(run, tmp_path):
    assert_one_line_error(*run("train", str(tmp_path), "--out", str(tmp_path / "m"), "--weights", "none"),
                          "langsort prepare")


def test_model_file_that_is_not_onnx(run, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "model.onnx").write_text("hello")
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", str(tmp_path / "model.onnx"),
                               "--out", str(tmp_path / "m")), "not an ONNX model")


def test_invalid_clip_limits(run, tmp_path):
    (tmp_path / "in").mkdir()
    assert_one_line_error(*run("prepare", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                               "--min-seconds", "20"), "min_seconds")


def test_sort_without_manifests(run, tmp_path):
    assert_one_line_error(*run("sort", str(tmp_path), "--dest", str(tmp_path / "d")), "langsort label")


def test_sort_into_the_labelled_folder(run, tmp_path):
    (tmp_path / "m" / ".langsort").mkdir(parents=True)
    (tmp_path / "m" / "files.parquet").write_bytes(b"")
    (tmp_path / "m" / ".langsort" / "run.json").write_text('{"input_root": "%s"}' % (tmp_path / "in"))
    assert_one_line_error(*run("sort", str(tmp_path / "m"), "--dest", str(tmp_path / "in" / "sorted")),
                          "inside the labelled folder")


@pytest.fixture
def no_ray(monkeypatch):
    """Arguments must be checked before Ray starts: starting it fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the arguments were checked")

    monkeypatch.setattr("langsort.runtime.init_ray", refuse)


def test_version_and_short_help(run):
    from langsort import __version__

    assert run("--version") == (0, f"langsort {__version__}\n")
    for args in (["-h"], ["label", "-h"], ["models", "-h"]):
        code, output = run(*args)
        assert code == 0 and output.startswith("Usage:"), (args, output)


@pytest.mark.parametrize("command", ["label", "prepare", "run"])
def test_an_input_without_audio_stops_at_once(run, tmp_path, no_ray, command):
    import time

    (tmp_path / "in" / "docs").mkdir(parents=True)
    (tmp_path / "in" / "docs" / "inventory.txt").write_text("tape list")
    args = {"label": ["label", str(tmp_path / "in"), "--model", "m.onnx"],
            "prepare": ["prepare", str(tmp_path / "in")],
            "run": ["run", str(tmp_path / "in"), str(tmp_path / "in"), "--weights", "none"]}[command]
    started = time.perf_counter()
    assert_one_line_error(*run(*args, "--out", str(tmp_path / "out")), f"no audio files under {tmp_path / 'in'}")
    assert time.perf_counter() - started < 2.0


def test_label_out_that_is_a_file(run, tmp_path, no_ray, tiny_model):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "manifests").write_text("a file")
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", tiny_model, "--out", str(tmp_path / "manifests")),
                          "is a file: give a folder")


def test_label_model_that_is_its_folder(run, tmp_path, no_ray, tiny_model):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    folder = os.path.dirname(tiny_model)
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", folder, "--out", str(tmp_path / "m")),
                          f"did you mean --model {tiny_model}?")


def test_cpus_is_for_the_local_ray_only(run, tmp_path, no_ray, tiny_model):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", tiny_model, "--out", str(tmp_path / "m"),
                               "--cpus", "1", "--address", "ray://head:10001"), "--cpus caps the local Ray")


def test_every_option_is_explained_and_choices_are_listed(run):
    import typer.main

    from langsort.cli import app

    def commands(group):
        for name, command in group.commands.items():
            yield from commands(command) if hasattr(command, "commands") else [(name, command)]

    for name, command in commands(typer.main.get_command(app)):
        for param in command.params:
            assert getattr(param, "help", None) or param.param_type_name == "argument", (name, param.name)
        code, output = run(*([name] if name != "list" else ["models", "list"]), "--help")
        assert code == 0 and "<bool>" not in output, output
    assert "--cpus" in run("label", "-h")[1] and "--cpus" in run("prepare", "-h")[1]
    assert "[mobilenet_v2|resnet50|resnet152]" in run("train", "-h")[1]
    assert "[copy|link|move]" in run("sort", "-h")[1] and "[int8]" in run("export", "-h")[1]


def test_the_progress_bar_is_silent_when_stderr_is_not_a_terminal(capfd):
    from langsort.progress import progress_bar

    with progress_bar("label", 3, unit="files") as advance:
        advance(3)
    assert capfd.readouterr() == ("", "")


def test_label_ends_with_the_total_time_and_what_to_do_next(run, ray_local, tiny_model, tmp_path):
    import numpy as np
    import soundfile

    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "tone.wav", np.sin(np.arange(16000 * 4) / 5).astype(np.float32), 16000)
    out = tmp_path / "manifests"
    code, output = run("label", str(tmp_path / "in"), "--model", tiny_model, "--out", str(out))
    assert code == 0, output
    assert "\x1b[" not in output
    labelled, following = output.strip().splitlines()[-2:]
    assert labelled.startswith("labelled 1 files") and " in " in labelled
    assert following == f"next: langsort report {out} | langsort sort {out} --dest SORTED | langsort review {out}"


def with_metadata(tiny_model: str, target, change) -> str:
    """A copy of the tiny model whose langsort metadata is change(metadata)."""
    import json

    import onnx

    from langsort.model import METADATA_KEY

    proto = onnx.load(tiny_model)
    props = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, METADATA_KEY: json.dumps(change(json.loads(props[METADATA_KEY])))})
    onnx.save(proto, str(target))
    return str(target)


BAD_METADATA = {
    "a list": (lambda m: [m], "must be an object"),
    "no labels": (lambda m: {k: v for k, v in m.items() if k != "labels"}, "lacks labels"),
    "no spectrogram": (lambda m: {k: v for k, v in m.items() if k != "spectrogram"}, "lacks spectrogram"),
    "an extra key": (lambda m: {**m, "spectrogram": {**m["spectrogram"], "colour": 1}}, "unknown spectrogram"),
    "hop 0": (lambda m: {**m, "spectrogram": {**m["spectrogram"], "hop_length": 0}}, "must be positive"),
    "10000 labels": (lambda m: {**m, "labels": [f"l{i}" for i in range(10000)]}, "labels must be"),
    "a huge grid": (lambda m: {**m, "spectrogram": {**m["spectrogram"], "frames": 10**6}, "grid_shape": None},
                    "too large"),
    "three labels for two outputs": (lambda m: {**m, "labels": ["a", "b", "c"]}, "output shape"),
    "a width of zero": (lambda m: {**m, "width": 0}, "width must be"),
    "half a member": (lambda m: {**m, "members": 1.5}, "members must be"),
    "column centres out of order": (lambda m: {**m, "column_centres": [0.6, 0.4]}, "column_centres must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_model_metadata_is_one_line_before_ray_starts(case, run, tmp_path, no_ray, tiny_model):
    change, words = BAD_METADATA[case]
    (tmp_path / "in").mkdir()
    synth.write(str(tmp_path / "in" / "a.wav"), np.zeros(16000, np.float32))
    model = with_metadata(tiny_model, tmp_path / "bad.onnx", change)
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", model, "--out", str(tmp_path / "m")), words)


def test_a_model_onnx_runtime_cannot_run_is_one_line_before_ray_starts(run, tmp_path, no_ray, tiny_model):
    import onnx

    proto = onnx.load(tiny_model)
    proto.graph.node[0].op_type = "NoSuchOperator"
    onnx.save(proto, str(tmp_path / "odd.onnx"))
    (tmp_path / "in").mkdir()
    synth.write(str(tmp_path / "in" / "a.wav"), np.zeros(16000, np.float32))
    assert_one_line_error(*run("label", str(tmp_path / "in"), "--model", str(tmp_path / "odd.onnx"),
                               "--out", str(tmp_path / "m")), "ONNX Runtime cannot run")
