"""User errors: one line saying what is wrong and how to fix it, exit status 2, no traceback."""

import pytest
from typer.testing import CliRunner

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
