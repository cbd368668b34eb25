"""ONNX Runtime's time per grid against how many grids one call takes, on one thread as a
label actor runs it: what langsort.predict.PIXELS_PER_RUN is chosen from. A CNN's first
layers hold megabytes of activations per image, so large calls spill out of the core's
cache and each grid costs more.

    python bench/ort_batch.py [--image-sizes 224,96] [--members 1] [--grids 64] [--repeat 3]

Untrained MobileNetV2 (speed does not depend on the weights); the fastest of --repeat passes.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import machine, out_dir
from label_throughput import untrained_model

from langsort.model import read_model_info
from langsort.predict import OnnxPredictor

ROWS = (1, 2, 4, 8, 16, 32, 64)


def seconds_per_grid(predictor: OnnxPredictor, grids: np.ndarray, rows: int, repeat: int) -> float:
    """Fastest pass over `grids`, `rows` to a call, per grid."""
    predictor.session.run(None, {predictor.input_name: grids[:rows]})  # first call of this shape, off the clock
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(0, len(grids), rows):
            predictor.session.run(None, {predictor.input_name: grids[i : i + rows]})
        best = min(best, (time.perf_counter() - started) / len(grids))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-sizes", default="224,96")
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--grids", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for size in (int(s) for s in args.image_sizes.split(",")):
        model = untrained_model(os.path.join(out_dir("ort_batch"), f"model_{size}_{args.members}"), size, args.members)
        predictor = OnnxPredictor(read_model_info(model))
        grids = np.random.default_rng(0).uniform(0, 255, (args.grids, *predictor.grid_shape)).astype(np.float32)
        times = {rows: seconds_per_grid(predictor, grids, rows, args.repeat) for rows in ROWS if rows <= args.grids}
        listed = ", ".join(f"{rows}: {t * 1000:.2f}" for rows, t in times.items())
        print(f"ort_batch: MobileNetV2 {size} px{f' x {args.members} averaged' if args.members > 1 else ''}, "
              f"ms per grid by grids per call: {listed}; langsort runs {predictor.rows_per_run} a call; "
              f"one thread of {machine()}")


if __name__ == "__main__":
    main()
