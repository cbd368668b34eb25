"""Labelling throughput of `langsort label` against the seed notebook's method
(bench/seed_method.py), on the same clips in one run, plus peak memory for 100 vs 1000 files.
Both use an untrained MobileNetV2 (speed does not depend on the weights): the seed's at 224;
langsort's at --image-size, 224 (`langsort train`'s default) unless told, or 96, what
`langsort run` trains from scratch (its spectrogram grids then have 96 columns too).

    python bench/label_throughput.py [--files 480] [--seed-clips N] [--mix archive|wav16k|short] [--image-size 224]
                                     [--members 1] [--memory]

archive and wav16k: an 8-hour archive of 60 s files, label() timed inside this process with
Ray already started, against the seed's steady speed. short: 320 files of 10 s in the
archive's format mix, where start-up and per-file costs are most of the time, so both are
timed as whole processes, start-up included: `langsort label` as a user runs it, and
seed_method.py over the first --seed-clips of the same clips, each --repeat times (alternating;
the fastest compared, all printed). `--mix short --files 3`: the wall time of a tiny job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import psutil
from common import HERE, Stopwatch, machine, out_dir, shared_texts
from prepare_throughput import MIXES
from seed_method import seed_method

from langsort import synth
from langsort.export import export
from langsort.features import SpectrogramParams
from langsort.label import label
from langsort.model import ModelMeta
from langsort.runtime import init_ray
from langsort.segment import SegmentParams


def untrained_model(model_dir: str, image_size: int = 224, members: int = 1) -> str:
    """A langsort model folder with random MobileNetV2 weights, exported to ONNX; its grids
    have `image_size` time columns, as `langsort train` and `run` make them; with `members`,
    the mean of that many, as self-training's final model."""
    import langsort.train  # noqa: F401
    from langsort.train.backbones import averaged, build_model
    from langsort.train.loop import MODEL_JSON, SAMPLE, WEIGHTS

    spec = SpectrogramParams(frames=image_size)
    os.makedirs(model_dir, exist_ok=True)
    models = [build_model("mobilenet_v2", 2, spec.grid_shape, image_size) for _ in range(members)]
    model = averaged(models) if members > 1 else models[0]
    model.save_weights(os.path.join(model_dir, WEIGHTS))
    grids = np.random.default_rng(0).uniform(0, 255, (8, *spec.grid_shape)).astype(np.float32)
    np.savez_compressed(os.path.join(model_dir, SAMPLE), grids=grids)
    meta = ModelMeta(labels=["maya", "spanish"], spectrogram=spec, segment=SegmentParams(), backbone="mobilenet_v2",
                     image_size=image_size, members=members,
                     details=dict(langsort_version="bench", initial_weights="none", trained_at="untrained"))
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


def whole_process(command: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of `command` as its own process, Python's start-up included."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    with Stopwatch() as watch:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])}... failed:\n{done.stderr[-3000:]}")
    return watch.seconds, done.stdout


def short_files(base: str, model: str, files: int, seconds: float, seed_clips: int, repeat: int) -> None:
    """`langsort label` and the seed method, each as a whole process, on short files; each
    run `repeat` times, alternating, and the fastest of each compared (on a shared machine
    the slower runs measure the neighbours), every run's time printed."""
    archive = os.path.join(base, "archive")
    audio_s = build_archive(archive, files, seconds, mix=MIXES["archive"])
    clips_file = os.path.join(base, "seed_clips.parquet")
    walls, seed_runs = [], []
    for i in range(repeat):
        manifests = os.path.join(base, f"manifests_{i}")
        wall, _ = whole_process([sys.executable, "-m", "langsort", "label", archive, "--model", model,
                                 "--out", manifests, "--quiet"])
        walls.append(wall)
        clips = pd.read_parquet(os.path.join(manifests, "clips.parquet"))
        if i == 0:
            clips[["path", "start_s", "end_s"]].to_parquet(clips_file)
        seed_wall, out = whole_process([sys.executable, os.path.join(HERE, "seed_method.py"), archive, clips_file,
                                        str(seed_clips)])
        seed_audio, seed_work = (float(v) for v in out.split("seed:")[1].split())
        seed_runs.append((seed_wall, seed_work))
    wall, (seed_wall, seed_work) = min(walls), min(seed_runs)
    speed, seed_speed = audio_s / wall, seed_audio / seed_wall
    listed = lambda times: ", ".join(f"{t:.1f}" for t in times)  # noqa: E731
    print(f"label_throughput[short]: langsort {speed:.0f}x real time as a whole process ({files} files of "
          f"{seconds:g} s, {len(clips)} clips: {wall:.1f} s wall from `langsort label` to its exit, fastest of "
          f"{listed(walls)} s, on {machine()})")
    print(f"label_throughput[short]: seed notebook {seed_speed:.1f}x real time as a whole process "
          f"({min(seed_clips, len(clips))} of the same clips, {seed_wall:.1f} s wall, fastest of "
          f"{listed(r[0] for r in seed_runs)} s, of which {seed_work:.1f} s labelling: {seed_audio / seed_work:.1f}x "
          f"without its start-up); langsort / seed = {speed / seed_speed:.1f}x "
          f"({speed * seed_work / seed_audio:.1f}x against the seed without start-up)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, help="default 480 of 60 s (8 h, so start-up is a small part as in an "
                                                  "archive); short: 320 of 10 s")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--seed-clips", type=int, help="default 120: the steady speed, which few clips "
                                                          "let swing; short: 40, each run a whole process")
    parser.add_argument("--mix", choices=sorted(MIXES) + ["short"], default="archive")
    parser.add_argument("--memory", action="store_true", help="also peak memory for 100 vs 1000 short files")
    parser.add_argument("--repeat", type=int, default=3, help="short: runs of each, the fastest compared")
    parser.add_argument("--members", type=int, default=1, help="models averaged: 2 is what `langsort train "
                        "--unlabelled` makes (its last two students)")
    parser.add_argument("--image-size", type=int, default=224,
                        help="langsort's model side and grid columns; 96: what `langsort run` trains from scratch")
    args = parser.parse_args()
    short = args.mix == "short"
    files = args.files or (320 if short else 480)
    seconds = args.seconds or (10.0 if short else 60.0)
    seed_clips = args.seed_clips or (40 if short else 120)
    base = out_dir("label_throughput" + ("_short" if short else ""))
    shutil.rmtree(base, ignore_errors=True)
    model = untrained_model(os.path.join(base, "model"), args.image_size, args.members)
    if short:
        short_files(base, model, files, seconds, seed_clips, args.repeat)
        return
    archive = os.path.join(base, "archive")
    audio_s = build_archive(archive, files, seconds, mix=MIXES[args.mix])

    init_ray()
    with Stopwatch() as run:
        summary = label(archive, model, os.path.join(base, "manifests"), progress=False)
    clips = pd.read_parquet(os.path.join(base, "manifests", "clips.parquet"))
    langsort_speed = audio_s / run.seconds
    seed_audio, seed_seconds = seed_method(archive, clips, seed_clips)
    seed_speed = seed_audio / seed_seconds
    print(f"label_throughput[{args.mix}]: langsort {langsort_speed:.0f}x real time ({audio_s / 3600:.2f} h, {summary.files} files, "
          f"{len(clips)} clips, {run.seconds:.1f} s on {machine()}, MobileNetV2 {args.image_size}"
          f"{f' x {args.members} averaged' if args.members > 1 else ''}, ONNX Runtime fp32)")
    print(f"label_throughput[{args.mix}]: seed notebook {seed_speed:.1f}x real time ({seed_clips} of the same clips); "
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
