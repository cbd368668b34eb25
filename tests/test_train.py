import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_LABELS

from langsort.errors import LangsortError
from langsort.train import data as train_data
from langsort.train.backbones import BACKBONES, WeightsError, build_model, make_backbone


def recordings(n_per_label: int, labels=("maya", "spanish")) -> pd.DataFrame:
    rows = [dict(path=f"{label}/{i:02d}.wav", label=label, status="ok") for label in labels for i in range(n_per_label)]
    return pd.DataFrame(rows + [dict(path="maya/bad.wav", label="maya", status="error")])


@pytest.mark.parametrize("n", [3, 7, 40])
def test_split_is_by_recording_stratified_and_reproducible(n):
    files = recordings(n)
    split = train_data.split_recordings(files, seed=3)
    assert "maya/bad.wav" not in split
    assert set(split) == set(files[files.status == "ok"].path)  # each recording on exactly one side
    for label in ("maya", "spanish"):
        sides = [side for path, side in split.items() if path.startswith(label)]
        assert {"train", "validation", "test"} <= set(sides)
    assert split == train_data.split_recordings(files, seed=3)
    assert split != train_data.split_recordings(files, seed=4) or n == 3


def test_split_refuses_a_language_with_too_few_recordings():
    with pytest.raises(LangsortError, match="at least 3"):
        train_data.split_recordings(recordings(2))


def test_clips_of_one_recording_never_sit_on_two_sides(prepared_small):
    files = pd.read_parquet(prepared_small / "files.parquet")
    clips = pd.read_parquet(prepared_small / "clips.parquet", columns=["path", "augment"])
    split = train_data.split_recordings(files)
    sides = clips.assign(side=clips.path.map(split)).groupby("path").side.nunique()
    assert (sides == 1).all()
    shape = (128, 224)
    seen = {}
    for side in ("train", "validation", "test"):
        _, _, rows = train_data.read_clips(str(prepared_small / "clips.parquet"), split, side, SMALL_LABELS, shape)
        seen[side] = set(rows.path)
        if side != "train":
            assert (rows.augment == 0).all()  # perturbed copies only ever train
    assert not (seen["train"] & seen["validation"]) and not (seen["train"] & seen["test"])
    assert not (seen["validation"] & seen["test"])


def test_training_sees_the_same_stream_however_prepare_wrote_the_clips(ray_local, tmp_path):
    """A seed repeats only if the seeded shuffle gets the same blocks: the clips sorted, then
    cut into blocks of fixed size, whatever files and row groups they came in."""
    rng = np.random.default_rng(0)
    clips = pd.DataFrame(dict(path=[f"r{i % 37:02d}.wav" for i in range(900)], start_s=rng.uniform(0, 60, 900),
                              augment=rng.integers(0, 3, 900), label=rng.choice(["maya", "spanish"], 900),
                              grid=[bytes([i % 256]) * 8 for i in range(900)]))
    blocks, streams = [], []
    for files, row_group in ((3, 50), (5, 300)):
        shuffled = clips.sample(frac=1.0, random_state=files)
        paths = []
        for k, rows in enumerate(np.array_split(np.arange(len(clips)), files)):
            paths.append(str(tmp_path / f"{files}-{k}.parquet"))
            shuffled.iloc[rows].to_parquet(paths[-1], row_group_size=row_group)
        dataset = train_data.ordered_clips(paths, len(clips)).materialize()
        whole_blocks = list(dataset.iter_batches(batch_size=None, batch_format="pandas"))
        blocks.append([len(b) for b in whole_blocks])
        ordered = pd.concat(whole_blocks, ignore_index=True)
        key = ["path", "augment", "start_s"]
        assert ordered[key].values.tolist() == clips.sort_values(key)[key].values.tolist()
        streams.append([tuple(b["start_s"]) for b in dataset.iter_batches(
            batch_size=32, batch_format="numpy", local_shuffle_buffer_size=128, local_shuffle_seed=5)])
    assert blocks[0] == blocks[1] and len(blocks[0]) == -(-len(clips) // train_data.ROWS_PER_BLOCK)
    assert max(blocks[0]) - min(blocks[0]) <= 1
    assert streams[0] == streams[1]


def test_class_weights_balance_the_languages():
    weights = train_data.class_weights(np.array([0, 0, 0, 1]), 2)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert weights @ np.array([3, 1]) == pytest.approx(4)  # the batch's total weight is unchanged
    assert train_data.class_weights(np.array([0, 0, 1]), 3).tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_spec_augment_masks_stripes_and_keeps_the_rest():
    import tensorflow as tf

    grids = tf.ones([4, 128, 224])
    masked = train_data.spec_augment(grids, max_time=24, max_freq=16).numpy()
    assert masked.shape == (4, 128, 224)
    assert set(np.unique(masked)) <= {0.0, 1.0}
    assert 0.5 < masked.mean() < 1.0


def test_mel_shift_moves_each_grid_by_at_most_the_given_bands_and_fills_from_the_edge():
    import tensorflow as tf

    ramp = np.tile(np.arange(128, dtype=np.float32)[:, None], (1, 10))  # band i holds i
    shifted = train_data.shift_mels(tf.constant(np.stack([ramp] * 64)), max_shift=4).numpy()
    shifts = 64 - shifted[:, 64, 0]  # the middle band tells each grid's shift
    assert set(shifts) <= set(range(-4, 5)) and len(set(shifts)) > 3
    for grid, s in zip(shifted, shifts):
        assert np.array_equal(grid[:, 0], np.clip(np.arange(128) - s, 0, 127))
        assert (grid == grid[:, :1]).all()  # time is untouched


def test_splice_changes_language_inside_clips_and_its_targets_say_where():
    """Each grid holds its index in every cell, so where a spliced clip's frames came from
    is readable; the targets must match those frames, per clip and per column."""
    labels = np.array([0, 1] * 32)
    grids = np.broadcast_to(np.arange(64, dtype=np.uint8)[:, None, None], (64, 8, 70)).copy()
    spliced, per_clip, per_column = train_data.splice(grids, labels, 2, 7, np.random.default_rng(0), share=0.5)
    changed = [i for i in range(64) if (spliced[i] != i).any()]
    assert 16 < len(changed) < 48  # about half
    for i in range(64):
        source = spliced[i, 0]  # which grid each frame came from
        frame_labels = labels[source]
        assert (spliced[i] == source).all()  # whole frames move, never parts of one
        assert source[0] == i  # a clip opens with itself
        if i in changed:
            cut = int(np.argmax(source != i))
            assert 14 <= cut <= 56 and (source[cut:] != i).all() and len(set(source[cut:])) == 1
            assert labels[source[cut]] != labels[i]  # the other language
        assert per_clip[i] == pytest.approx(np.bincount(frame_labels, minlength=2) / 70)
        for j in range(7):
            assert per_column[i, j] == pytest.approx(np.bincount(frame_labels[10 * j:10 * j + 10], minlength=2) / 10)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_backbone_builds_with_its_own_preprocessing(name):
    import tf_keras

    module = getattr(tf_keras.applications, BACKBONES[name].module)
    model = build_model(name, 3, (128, 224), image_size=64)
    assert model.output_shape == (None, 3)
    image_part = tf_keras.Model(model.input, model.get_layer("preprocess_input").output)
    grid = np.random.default_rng(0).uniform(0, 255, (2, 128, 224)).astype(np.float32)
    image = tf_keras.layers.Resizing(64, 64)(grid[..., None]).numpy()
    expected = module.preprocess_input(np.concatenate([image] * 3, axis=-1))
    np.testing.assert_allclose(image_part.predict(grid, verbose=0), expected, atol=1e-3)


def test_a_width_below_one_thins_mobilenet_and_the_resnets_refuse_it():
    full = build_model("mobilenet_v2", 2, (64, 48), image_size=48)
    half = build_model("mobilenet_v2", 2, (64, 48), image_size=48, width=0.5)
    assert half.output_shape == (None, 2) and half.count_params() < full.count_params() / 2
    with pytest.raises(LangsortError, match="mobilenet_v2 only"):
        build_model("resnet50", 2, (64, 48), image_size=48, width=0.5)


def test_an_average_of_models_gives_the_mean_of_their_outputs_and_reloads_from_its_weights(tmp_path):
    import dataclasses

    from langsort.features import SpectrogramParams
    from langsort.model import ModelMeta
    from langsort.segment import SegmentParams
    from langsort.train.backbones import averaged, with_columns
    from langsort.train.loop import WEIGHTS, load_model

    spec = SpectrogramParams(n_mels=64, frames=48)
    models = [build_model("mobilenet_v2", 2, spec.grid_shape, image_size=48, width=0.35) for _ in range(2)]
    for seed, model in enumerate(models):  # apart from their random starts, heads that disagree
        head = model.get_layer("probabilities")
        head.set_weights([np.random.default_rng(seed).normal(0, 1, w.shape) for w in head.get_weights()])
    mean = averaged(models)
    grids = np.random.default_rng(2).uniform(0, 255, (3, *spec.grid_shape)).astype(np.float32)
    each = [with_columns(model).predict(grids, verbose=0) for model in models]
    got = with_columns(mean).predict(grids, verbose=0)
    assert not np.allclose(each[0][0], each[1][0])
    for output in (0, 1):  # clip and column probabilities
        np.testing.assert_allclose(got[output], (each[0][output] + each[1][output]) / 2, atol=1e-6)
    np.testing.assert_allclose(mean.predict(grids, verbose=0), got[0], atol=1e-6)

    mean.save_weights(str(tmp_path / WEIGHTS))
    meta = ModelMeta(labels=["maya", "spanish"], spectrogram=spec, segment=SegmentParams(), backbone="mobilenet_v2",
                     image_size=48, width=0.35, members=2)
    assert ModelMeta.from_dict(meta.to_dict()) == meta
    reloaded = load_model(str(tmp_path), meta)
    np.testing.assert_allclose(reloaded.predict(grids, verbose=0), got[0], atol=1e-6)
    with pytest.raises(ValueError):  # the members are part of the model: one member's worth of weights is not it
        load_model(str(tmp_path), dataclasses.replace(meta, members=1))


def test_weights_from_a_local_file_are_loaded(tmp_path):
    source = make_backbone("mobilenet_v2", 64, "none")
    path = str(tmp_path / "backbone.h5")
    source.save_weights(path)
    loaded = make_backbone("mobilenet_v2", 64, path)
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    model = build_model("mobilenet_v2", 2, (128, 224), image_size=64, weights=path)
    np.testing.assert_array_equal(model.backbone.get_weights()[0], source.get_weights()[0])


def test_a_weights_file_that_is_missing_is_a_clear_error():
    from langsort.train.backbones import check_weights

    with pytest.raises(WeightsError, match="not found"):
        check_weights("/nonexistent/weights.h5")


def test_imagenet_offline_is_one_line_naming_the_alternatives(prepared_small, tmp_path):
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "RAY_ADDRESS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "langsort", "train", str(prepared_small), "--out", str(tmp_path / "m"),
         "--weights", "imagenet", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line and "I0000" not in line]
    error = [line for line in lines if line.startswith("error:")]
    assert len(error) == 1 and "--weights none" in error[0] and "--weights PATH" in error[0]
    assert "Traceback" not in done.stderr


def test_two_worker_ray_train_run_writes_a_complete_model_dir(trained_small):
    model_dir = trained_small.model_dir
    for name in ("model.weights.h5", "model.json", "metrics.json", "history.png", "confusion.png",
                 "validation_sample.npz", "split.json"):
        assert os.path.getsize(os.path.join(model_dir, name)) > 0, name
    meta = json.load(open(os.path.join(model_dir, "model.json")))
    assert meta["labels"] == SMALL_LABELS and meta["workers"] == 2 and meta["image_size"] == 48
    assert meta["width"] == 0.5
    metrics = trained_small.metrics
    assert len(metrics["history"]) == 2
    for level in ("clip", "file"):
        test = metrics["test"][level]
        assert 0.0 <= test["accuracy"] <= 1.0 and test["n"] > 0
        assert np.sum(test["confusion"]) == test["n"]
        assert set(test["per_class"]) == set(SMALL_LABELS)


def test_chance_level_predictions_are_recognised():
    from langsort.metrics import summarize
    from langsort.train.evaluate import why_not_learned

    labels = ["maya", "spanish"]
    truth = np.array([0] * 20 + [1] * 20)
    learned = summarize(truth, np.where(np.arange(40) % 10 == 0, 1 - truth, truth), labels)
    assert why_not_learned(learned, labels) is None
    collapsed = summarize(truth, np.ones(40, np.int64), labels)
    assert "100% of validation clips are called spanish" in why_not_learned(collapsed, labels)
    coin = summarize(truth, np.arange(40) % 2, labels)
    assert "chance" in why_not_learned(coin, labels)
    one_language = summarize(np.zeros(10, np.int64), np.zeros(10, np.int64), labels)
    assert why_not_learned(one_language, labels) is None


def test_training_on_labels_that_cannot_be_learned_says_so_and_leaves_no_model(ray_local, tmp_path, capfd):
    """One voice reading the same Spanish, shuffled into two folders (each copy with its own
    faint noise): nothing separates the folders, so nothing can be learned. Each epoch's line
    reaches the driver once, without the workers' Ray and TensorFlow notes around it."""
    from langsort import synth
    from langsort.prepare import PrepareConfig, prepare
    from langsort.train.loop import MODEL_JSON, DidNotLearnError, TrainOptions, fit

    rng = np.random.default_rng(21)
    speech = synth.recording("spanish", 10.0, rng, synth.Voice("spanish", "m3", 150, 50))
    folders = rng.permutation(["maya"] * 6 + ["spanish"] * 6)
    for i, folder in enumerate(folders):
        copy = speech + rng.normal(0, 1e-3, len(speech)).astype(np.float32)
        synth.write(str(tmp_path / "labelled" / folder / f"{i:02d}.wav"), copy)
    prepare(str(tmp_path / "labelled"), str(tmp_path / "prepared"), PrepareConfig(), progress=False)
    options = TrainOptions(weights="none", epochs=3, image_size=48, workers=1, batch_size=8)
    with pytest.raises(DidNotLearnError, match="did not learn to separate the languages"):
        fit(str(tmp_path / "prepared"), str(tmp_path / "model"), options, progress=True)
    printed = capfd.readouterr()
    assert [line.split(":")[0] for line in printed.out.splitlines() if line.startswith("epoch ")] == \
        ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for note in ("SplitCoordinator", "Execution plan", "oneDNN", "Started training worker group", "will hang"):
        assert note not in printed.out + printed.err
    assert not (tmp_path / "model" / MODEL_JSON).exists()
    assert (tmp_path / "model" / "metrics.json").exists()  # what happened stays readable


def test_auto_weights_fall_back_to_training_from_scratch_offline(tmp_path, monkeypatch):
    from langsort.train.backbones import auto_weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # and no way out
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    # urllib keeps the first opener it builds, proxies included: later tests must not inherit it
    monkeypatch.setattr("urllib.request._opener", None)
    assert auto_weights("mobilenet_v2", 96) == "none"
