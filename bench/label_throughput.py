"""Labelling throughput of `langsort label` against the seed notebook's method, on the same
clips in one run, plus peak memory for 100 vs 1000 files.

Seed method (per clip, as the notebook did it): librosa.load at 22.05 kHz -> mel
spectrogram drawn with librosa.display.specshow and saved as PNG -> PNG loaded at 224x224 ->
Keras MobileNetV2 + Dense head predict. Both use an untrained MobileNetV2 at 224 (speed
does not depend on the weights).

    python bench/label_throughput.py [--files 480] [--seed-clips 40] [--mix archive|wav16k] [--memory]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time

import numpy as np
import pandas as pd
import psutil
from common import Stopwatch, out_dir, shared_texts
from prepare_throughput import MIXES

from langsort import synth
from langsort.export import export
from langsort.features import SpectrogramParams
from langsort.label import label
from langsort.model import ModelMeta
from langsort.runtime import init_ray
from langsort.segment import SegmentParams


def untrained_model(model_dir: str, image_size: int = 224) -> str:
    """A langsort model folder with random MobileNetV2 weights, exported to ONNX."""
    import langsort.train  # noqa: F401
    from langsort.train.backbones import build_model
    from langsort.train.loop import MODEL_JSON, SAMPLE, WEIGHTS

    spec = SpectrogramParams()
    os.makedirs(model_dir, exist_ok=True)
    model = build_model("mobilenet_v2", 2, spec.grid_shape, image_size)
    model.save_weights(os.path.join(model_dir, WEIGHTS))
    grids = np.random.default_rng(0).uniform(0, 255, (8, *spec.grid_shape)).astype(np.float32)
    np.savez_compressed(os.path.join(model_dir, SAMPLE), grids=grids)
    meta = ModelMeta(labels=["maya", "spanish"], spectrogram=spec, segment=SegmentParams(), backbone="mobilenet_v2",
                     image_size=image_size, details=dict(langsort_version="bench", initial_weights="none",
                                                         trained_at="untrained"))
    with open(os.path.join(model_dir, MODEL_JSON), "w") as f:
        json.dump(meta.to_dict(), f)
    return export(model_dir).path


def build_archive(root: str, files: int, seconds: float, seed: int = 0, mix: list = synth.FORMAT_MIX) -> float:
    """`files` recordings (unique bytes each), in the given format mix."""
    rng = np.random.default_rng(seed)
    texts = shared_texts() or {}
    base = [synth.recording(lang, seconds, rng, lines=texts.get(lang)) for lang in synth.LANGUAGES for _ in range(5)]
    for i in range(files):
        fmt = mix[i % len(mix)]
        samples = base[i % len(base)] + rng.normal(0, 1e-4, len(base[i % len(base)])).astype(np.float32)
        synth.write(os.path.join(root, f"{i // 100:02d}", f"{i:04d}.{fmt.ext}"), samples, synth.ESPEAK_RATE,
                    fmt.rate, fmt.channels)
    return files * seconds


class PeakMemory:
    """Peak of the summed RSS of this process and its children (the Ray workers)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        me = psutil.Process()

        def sample():
            while not self._stop.is_set():
                total = 0
                for proc in [me, *me.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
                time.sleep(0.2)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def seed_method(archive: str, clips: pd.DataFrame, limit: int) -> float:
    """Audio-seconds per wall-second of the notebook pipeline on the first `limit` clips."""
    import librosa
    import librosa.display
    import matplotlib

    import langsort.train  # noqa: F401

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tf_keras
    from PIL import Image

    base = tf_keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg")
    model = tf_keras.Sequential([base, tf_keras.layers.Dense(2, activation="softmax")])
    chosen = clips.head(limit)
    with tempfile.TemporaryDirectory() as tmp, Stopwatch() as watch:
        images = []
        for i, clip in enumerate(chosen.itertuples()):
            y, sr = librosa.load(os.path.join(archive, clip.path), sr=22050, offset=clip.start_s,
                                 duration=clip.end_s - clip.start_s)
            mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max)
            fig = plt.figure(figsize=(2.24, 2.24), dpi=100)
            librosa.display.specshow(mel, sr=sr)
            png = os.path.join(tmp, f"{i}.png")
            fig.savefig(png)
            plt.close(fig)
            image = Image.open(png).convert("RGB").resize((224, 224))
            images.append(tf_keras.applications.mobilenet_v2.preprocess_input(np.asarray(image, np.float32)))
        model.predict(np.stack(images), batch_size=32, verbose=0)
    return float((chosen.end_s - chosen.start_s).sum() / watch.seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=480, help="of 60 s: 8 h, so start-up is a small part as in an archive")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed-clips", type=int, default=40)
    parser.add_argument("--mix", choices=sorted(MIXES), default="archive")
    parser.add_argument("--memory", action="store_true", help="also peak memory for 100 vs 1000 short files")
    args = parser.parse_args()
    base = out_dir("label_throughput")
    shutil.rmtree(base, ignore_errors=True)
    model = untrained_model(os.path.join(base, "model"))
    archive = os.path.join(base, "archive")
    audio_s = build_archive(archive, args.files, args.seconds, mix=MIXES[args.mix])

    init_ray()
    with Stopwatch() as run:
        summary = label(archive, model, os.path.join(base, "manifests"), progress=False)
    clips = pd.read_parquet(os.path.join(base, "manifests", "clips.parquet"))
    langsort_speed = audio_s / run.seconds
    seed_speed = seed_method(archive, clips, args.seed_clips)
    print(f"label_throughput[{args.mix}]: langsort {langsort_speed:.0f}x real time ({audio_s / 3600:.2f} h, {summary.files} files, "
          f"{len(clips)} clips, {run.seconds:.1f} s on {os.cpu_count()} cores, MobileNetV2 224, ONNX Runtime fp32)")
    print(f"label_throughput[{args.mix}]: seed notebook {seed_speed:.1f}x real time ({args.seed_clips} of the same clips); "
          f"langsort / seed = {langsort_speed / seed_speed:.1f}x")

    if args.memory:
        for n in (100, 1000):
            tree = os.path.join(base, f"memory_{n}")
            build_archive(tree, n, 5.0, seed=n)
            with PeakMemory() as peak, Stopwatch() as watch:
                label(tree, model, os.path.join(base, f"manifests_{n}"), progress=False)
            print(f"label_memory: {n} files of 5 s: peak RSS of driver + Ray workers {peak.peak / 2**20:.0f} MB "
                  f"({watch.seconds:.0f} s)")


if __name__ == "__main__":
    main()
