"""Accuracy of `langsort train` at defaults (--weights none) on synthesized Spanish/K'iche'.

Corpus: sentences of ../shared/corpus-text spoken by espeak-ng (es-419 / quc) in several
voice variants, speeds and pitches, recordings of 20-90 s. Two test sets:
- the grouped test split of the training corpus (recordings never trained on, voices seen);
- a separate corpus in voice variants that never appear in training, from held-out sentences.

    python bench/accuracy.py [--per-language 36] [--epochs 10] [--augment 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
from common import Stopwatch, out_dir, shared_texts

from langsort import synth
from langsort.prepare import PrepareConfig, prepare
from langsort.runtime import init_ray
from langsort.train.loop import TrainOptions, evaluate_prepared, fit

SEEN_VOICES = ["m1", "m2", "m3", "m4", "f1", "f2", "f3"]
UNSEEN_VOICES = ["m5", "m7", "f4", "f5"]


def figures(name: str, metrics: dict) -> str:
    clip, file = metrics["clip"], metrics["file"]
    return (f"{name}: clip accuracy {clip['accuracy']:.3f} ({clip['n']} clips), file accuracy "
            f"{file['accuracy']:.3f} ({file['n']} files), macro-F1 {clip['macro_f1']:.3f}")


def make_corpora(base: str, per_language: int, unseen_per_language: int, keep: bool) -> tuple[str, str]:
    """The training corpus (seen voices) and the unseen-voices corpus, from disjoint sentences."""
    corpus, unseen = os.path.join(base, "corpus"), os.path.join(base, "unseen")
    texts = shared_texts()
    if texts is None:
        raise SystemExit("../shared/corpus-text not found beside the repository")
    cut = {language: int(len(lines) * 0.75) for language, lines in texts.items()}
    train_text = {language: lines[: cut[language]] for language, lines in texts.items()}
    held_out_text = {language: lines[cut[language]:] for language, lines in texts.items()}
    if not (keep and os.path.isdir(corpus)):
        shutil.rmtree(base, ignore_errors=True)
        synth.labelled_corpus(corpus, per_language, (20, 90), seed=1, variants=SEEN_VOICES, texts=train_text)
        synth.labelled_corpus(unseen, unseen_per_language, (20, 90), seed=2, variants=UNSEEN_VOICES,
                              texts=held_out_text)
    return corpus, unseen


def trained_model(base: str) -> str:
    """A model trained at defaults on the seen-voices corpus and exported, for benches that
    need one (timeline, short files); kept under `base`."""
    from langsort.export import export

    corpus, _ = make_corpora(os.path.join(base, "training"), 36, 1, keep=True)
    prepared, model_dir = os.path.join(base, "prepared"), os.path.join(base, "model")
    shutil.rmtree(prepared, ignore_errors=True)
    prepare(corpus, prepared, PrepareConfig(augment=2), progress=False)
    fit(prepared, model_dir, TrainOptions(weights="none"), progress=True)
    return export(model_dir).path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-language", type=int, default=36)
    parser.add_argument("--unseen-per-language", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    parser.add_argument("--augment", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=None, help="default: the training default")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the training default")
    parser.add_argument("--keep-corpus", action="store_true", help="reuse the corpus of an earlier run")
    args = parser.parse_args()

    base = out_dir("accuracy")
    corpus, unseen = make_corpora(base, args.per_language, args.unseen_per_language, args.keep_corpus)
    for name in ("prepared", "prepared_unseen", "model"):
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)

    init_ray()
    with Stopwatch() as preparing:
        prepare(corpus, os.path.join(base, "prepared"), PrepareConfig(augment=args.augment), progress=False)
        prepare(unseen, os.path.join(base, "prepared_unseen"), PrepareConfig(), progress=False)
    options = TrainOptions(weights="none", epochs=args.epochs, image_size=args.image_size,
                           batch_size=args.batch_size or TrainOptions.batch_size)
    with Stopwatch() as training:
        result = fit(os.path.join(base, "prepared"), os.path.join(base, "model"), options, progress=True)
    unseen_metrics = evaluate_prepared(os.path.join(base, "model"), os.path.join(base, "prepared_unseen"))
    with open(os.path.join(base, "unseen_metrics.json"), "w") as f:
        json.dump(unseen_metrics, f, indent=2)

    history = result.metrics["history"]
    print(f"accuracy: corpus {args.per_language}/language (20-90 s, voices {','.join(SEEN_VOICES)}), "
          f"augment {args.augment}, image {args.image_size or 'default'}, batch {options.batch_size}, "
          f"{len(history)} epochs run of {args.epochs}")
    print("accuracy " + figures("grouped test split", result.metrics["test"]))
    print("accuracy " + figures(f"unseen voices ({','.join(UNSEEN_VOICES)})", unseen_metrics))
    print(f"accuracy wall: prepare {preparing.seconds / 60:.1f} min, train {training.seconds / 60:.1f} min "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
