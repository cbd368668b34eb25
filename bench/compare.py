"""The three backbones side by side (`langsort compare`) on the corpus of bench/accuracy.py.

ResNet152 is slow on 2 cores, so the comparison runs at a small image size and few epochs
(defaults: 64 px, 4 epochs, one perturbed copy per recording); the figures compare the
backbones with one another, they are not each backbone's best.

    python bench/compare.py [--image-size 64] [--epochs 4] [--augment 1]
"""

from __future__ import annotations

import argparse
import os
import shutil

from accuracy import make_corpora
from common import Stopwatch, machine, out_dir

from langsort import compare
from langsort.prepare import PrepareConfig, prepare
from langsort.runtime import init_ray
from langsort.train.loop import TrainOptions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbones", default="mobilenet_v2,resnet50,resnet152")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--augment", type=int, default=1)
    parser.add_argument("--per-language", type=int, default=36)
    args = parser.parse_args()

    corpus, _ = make_corpora(out_dir("accuracy"), args.per_language, 12, keep=True)
    base = out_dir("compare")
    shutil.rmtree(base, ignore_errors=True)
    os.environ["LANGSORT_MODELS"] = os.path.join(base, "models")
    init_ray()
    prepared = os.path.join(base, "prepared")
    prepare(corpus, prepared, PrepareConfig(augment=args.augment), progress=False)
    trials = compare.trial_grid(args.backbones.split(","), [args.image_size], [1e-3])
    with Stopwatch() as clock:
        result = compare.compare(prepared, os.path.join(base, "out"), trials,
                                 TrainOptions(weights="none", epochs=args.epochs), register_as="bench-best")
    print(f"compare: {len(trials)} backbones at {args.image_size} px, {args.epochs} epochs, augment {args.augment}, "
          f"corpus {args.per_language}/language, weights none")
    for line in compare.render_text(result.rows, result.best).splitlines():
        print(f"compare {line}")
    print(f"compare wall: {clock.seconds / 60:.1f} min on {machine()}")


if __name__ == "__main__":
    main()
