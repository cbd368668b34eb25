from langsort.pipeline import RunSettings, resolved, stage_settings
from langsort.train import EPOCHS, IMAGE_SIZE, SCRATCH_EPOCHS, SCRATCH_IMAGE_SIZE


def test_run_trains_from_scratch_on_small_images_and_pretrained_at_the_methods_size():
    scratch = resolved(RunSettings(weights="none"), echo=None)
    assert (scratch.weights, scratch.image_size, scratch.epochs) == ("none", SCRATCH_IMAGE_SIZE, SCRATCH_EPOCHS)
    assert scratch.patience == SCRATCH_EPOCHS  # no early stop from scratch
    pretrained = resolved(RunSettings(weights="imagenet"), echo=None)
    assert (pretrained.image_size, pretrained.epochs, pretrained.patience) == (IMAGE_SIZE, EPOCHS, 3)
    chosen = resolved(RunSettings(weights="none", image_size=128, epochs=5), echo=None)
    assert (chosen.image_size, chosen.epochs) == (128, 5)
    config, options = stage_settings(scratch)  # what run prepares and trains with
    assert (config.spectrogram.frames, options.image_size, options.epochs, options.patience) == (
        SCRATCH_IMAGE_SIZE, SCRATCH_IMAGE_SIZE, SCRATCH_EPOCHS, SCRATCH_EPOCHS)


def test_auto_weights_are_decided_before_prepare_and_said_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # and no way out
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    # urllib keeps the first opener it builds, proxies included: later tests must not inherit it
    monkeypatch.setattr("urllib.request._opener", None)
    lines = []
    settings = resolved(RunSettings(), echo=lines.append)
    assert (settings.weights, settings.image_size) == ("none", SCRATCH_IMAGE_SIZE)
    assert len(lines) == 1 and "from scratch" in lines[0]
