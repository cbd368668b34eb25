"""The seed notebook's labelling method, per clip: librosa.load at 22.05 kHz -> mel
spectrogram drawn with librosa.display.specshow and saved as PNG -> PNG loaded at 224x224 ->
Keras MobileNetV2 + Dense head predict (untrained: speed does not depend on the weights).

Kept apart from label_throughput.py so that, run as its own process, it imports only what
the notebook did:

    python bench/seed_method.py ARCHIVE CLIPS.parquet LIMIT

labels the first LIMIT clips of CLIPS.parquet (path, start_s, end_s: langsort's clips of the
same files) and prints `seed: <clip seconds> <seconds of work>`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd


def seed_method(archive: str, clips: pd.DataFrame, limit: int) -> tuple[float, float]:
    """(audio seconds of the first `limit` clips, wall seconds to label them) by the notebook
    pipeline, the model built and the whole pipeline warmed up on one clip before the clock
    starts."""
    import librosa
    import librosa.display
    import matplotlib

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tf_keras
    from PIL import Image

    base = tf_keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg")
    model = tf_keras.Sequential([base, tf_keras.layers.Dense(2, activation="softmax")])
    chosen = clips.head(limit)

    def image_of(clip, png: str) -> np.ndarray:
        y, sr = librosa.load(os.path.join(archive, clip.path), sr=22050, offset=clip.start_s,
                             duration=clip.end_s - clip.start_s)
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max)
        fig = plt.figure(figsize=(2.24, 2.24), dpi=100)
        librosa.display.specshow(mel, sr=sr)
        fig.savefig(png)
        plt.close(fig)
        image = Image.open(png).convert("RGB").resize((224, 224))
        return tf_keras.applications.mobilenet_v2.preprocess_input(np.asarray(image, np.float32))

    with tempfile.TemporaryDirectory() as tmp:
        # start-up, off the clock: the first predict traces the model, and the first clip
        # fills librosa's compiled-code and matplotlib's font caches on a fresh install
        model.predict(image_of(next(chosen.itertuples()), os.path.join(tmp, "warm-up.png"))[None], verbose=0)
        started = time.perf_counter()
        images = [image_of(clip, os.path.join(tmp, f"{i}.png")) for i, clip in enumerate(chosen.itertuples())]
        model.predict(np.stack(images), batch_size=32, verbose=0)
    return float((chosen.end_s - chosen.start_s).sum()), time.perf_counter() - started


if __name__ == "__main__":
    archive, clips_path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    audio_s, seconds = seed_method(archive, pd.read_parquet(clips_path), limit)
    print(f"seed: {audio_s} {seconds}")
