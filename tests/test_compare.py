import json
import os

import pytest

from langsort import compare, registry
from langsort.train.loop import TrainOptions


def test_trial_grid_crosses_every_setting_and_rejects_unknown_backbones():
    trials = compare.trial_grid(["mobilenet_v2", "resnet50"], [64, 96], [1e-3])
    assert [t.name for t in trials] == ["mobilenet_v2-64px-lr0.001", "mobilenet_v2-96px-lr0.001",
                                        "resnet50-64px-lr0.001", "resnet50-96px-lr0.001"]
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        compare.trial_grid(["vgg16"], [None], [1e-3])


def test_trials_share_the_cpus_without_oversubscribing():
    assert compare.trials_at_once(3, cpus=2) == (2, 1)
    assert compare.trials_at_once(2, cpus=16) == (2, 8)
    assert compare.trials_at_once(3, cpus=8, requested=1) == (1, 8)


def test_best_is_chosen_on_validation_not_test():
    rows = [dict(trial="a", validation_macro_f1=0.9, validation_accuracy=0.9, training_minutes=1, macro_f1=1.0),
            dict(trial="b", validation_macro_f1=0.95, validation_accuracy=0.9, training_minutes=5, macro_f1=0.5)]
    assert compare.best_of(rows)["trial"] == "b"


def test_two_backbone_comparison_runs_tune_trials_and_registers_the_best(prepared_small, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSORT_MODELS", str(tmp_path / "models"))
    out = tmp_path / "cmp"
    trials = compare.trial_grid(["mobilenet_v2", "resnet50"], [32], [1e-3])
    options = TrainOptions(weights="none", epochs=1, batch_size=8)
    result = compare.compare(str(prepared_small), str(out), trials, options, register_as="best-small", echo=print)

    assert [r["backbone"] for r in result.rows] == ["mobilenet_v2", "resnet50"]
    for row in result.rows:
        assert os.path.isfile(row["model"]) and row["onnx_clips_per_second"] > 0
        assert row["parameters"] > 1e6 and 0 <= row["clip_accuracy"] <= 1
    mobilenet, resnet = result.rows
    assert resnet["parameters"] > 5 * mobilenet["parameters"]
    # the same grouped split for every trial
    splits = [json.loads((out / "trials" / r["trial"] / "split.json").read_text()) for r in result.rows]
    assert splits[0] == splits[1]
    text = compare.render_text(result.rows, result.best)
    assert "mobilenet_v2-32px" in text and "resnet50-32px" in text
    page = (out / "comparison.html").read_text()
    assert "mobilenet_v2-32px" in page and "resnet50-32px" in page and "data:image/png" in page
    assert (out / "comparison.png").stat().st_size > 1000
    assert result.best == compare.best_of(result.rows)
    assert [name for name, _ in registry.list_models()] == ["best-small"]
    assert registry.list_models()[0][1].meta.backbone == result.best["backbone"]

    # a second run keeps the finished trials instead of training again
    again = compare.compare(str(prepared_small), str(out), trials, options, register_as="best-small", echo=print)
    assert [r["training_minutes"] for r in again.rows] == [r["training_minutes"] for r in result.rows]
