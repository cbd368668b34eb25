"""Accuracy of langsort trained from scratch on synthesized Spanish/K'iche'.

Corpus: sentences of ../shared/corpus-text spoken by espeak-ng (es-419 / quc) in several
voice variants, speeds and pitches, recordings of 20-90 s.

--scenario default: `train` at defaults (--weights none) on 36 recordings a language; two
test sets: the grouped test split (voices seen) and a corpus in voice variants that never
appear in training, from held-out sentences.

--scenario little: what a small team has. 20 recordings a language of 20-90 s for training,
and an unsorted archive in voices never trained on, under noise (white, pink, babble of the
other language) at 5-30 dB SNR, telephone band, 8 kHz and 44.1 kHz, mp3 and ogg, plus
silence, music and a corrupt file, through `langsort run --weights none` at defaults.
Scored: file accuracy on the speech files (unknown counts as wrong), files confidently
wrong (ok but wrong), and the whole run's wall time.

    python bench/accuracy.py [--scenario default|little] [--per-language 36] [--epochs 10] [--augment 2] [--seed N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil

import numpy as np
from common import Stopwatch, machine, out_dir, split_texts

from langsort import synth
from langsort.prepare import PrepareConfig, prepare
from langsort.runtime import init_ray
from langsort.selftrain import ROUNDS, TEACHERS, WORK_DIR, SelfTraining, archive_path, fit_with_unlabelled
from langsort.train.loop import TrainOptions, evaluate_prepared, fit, read_model_meta

SEEN_VOICES = ["m1", "m2", "m3", "m4", "f1", "f2", "f3"]
UNSEEN_VOICES = ["m5", "m7", "f4", "f5"]


def figures(name: str, metrics: dict) -> str:
    clip, file = metrics["clip"], metrics["file"]
    return (f"{name}: clip accuracy {clip['accuracy']:.3f} ({clip['n']} clips), file accuracy "
            f"{file['accuracy']:.3f} ({file['n']} files), macro-F1 {clip['macro_f1']:.3f}")


def make_corpora(base: str, per_language: int, unseen_per_language: int, keep: bool) -> tuple[str, str]:
    """The training corpus (seen voices) and the unseen-voices corpus, from disjoint sentences."""
    corpus, unseen = os.path.join(base, "corpus"), os.path.join(base, "unseen")
    train_text, held_out_text = split_texts()
    if not (keep and os.path.isdir(corpus)):
        shutil.rmtree(base, ignore_errors=True)
        synth.labelled_corpus(corpus, per_language, (20, 90), seed=1, variants=SEEN_VOICES, texts=train_text)
        synth.labelled_corpus(unseen, unseen_per_language, (20, 90), seed=2, variants=UNSEEN_VOICES,
                              texts=held_out_text)
    return corpus, unseen


def trained_model(base: str, seed: int = 0, unlabelled: str | None = None, rounds: int = ROUNDS,
                  as_run: bool = False) -> list[str]:
    """A model trained at defaults (but `seed`) on the seen-voices corpus and exported, for
    benches that need one (timeline, short files); kept under `base`. At `langsort train`'s
    defaults, or with `as_run` at `langsort run`'s from scratch (its image size, epochs and teachers).
    With `unlabelled`, then `rounds` of self-training on it, as `langsort train --unlabelled`
    (or `run`) does: the exported model of every round, the labelled-only teacher first, then
    the final model when it averages the last students."""
    from langsort.export import export
    from langsort.model import MODEL_FILE
    from langsort.pipeline import RunSettings, resolved, stage_settings

    corpus, _ = make_corpora(os.path.join(base, "training"), 36, 1, keep=True)
    prepared, model_dir = os.path.join(base, "prepared"), os.path.join(base, "model")
    shutil.rmtree(prepared, ignore_errors=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    if as_run:
        settings = resolved(RunSettings(weights="none", seed=seed))
        (config, options), teachers = stage_settings(settings), settings.teachers
    else:
        config, options = PrepareConfig(augment=2, seed=seed), TrainOptions(weights="none", seed=seed)
        teachers = TEACHERS
    prepare(corpus, prepared, config, progress=False)
    if not (unlabelled and rounds):
        fit(prepared, model_dir, options, progress=True)
        return [export(model_dir).path]
    done = fit_with_unlabelled(prepared, model_dir, options, SelfTraining(unlabelled, rounds, teachers=teachers),
                               progress=True)
    folders = [os.path.join(model_dir, WORK_DIR, f"round-{r}", "model") for r in range(len(done["self_training"]) + 1)]
    final = export(model_dir)
    each = [path if os.path.isfile(path := os.path.join(folder, MODEL_FILE)) else export(folder).path
            for folder in folders]
    return each + ([final.path] if read_model_meta(model_dir).members > 1 else [])


def degraded(samples: np.ndarray, condition: str, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One archive condition: noise (white, pink, babble of the other language) at 5-30 dB
    SNR, or a telephone band; samples at the espeak rate."""
    from scipy.signal import butter, sosfilt

    speech_power = np.mean(samples[np.abs(samples) > 1e-3] ** 2)
    snr = 10 ** (rng.uniform(5, 30) / 10)
    if condition == "telephone":
        return sosfilt(butter(4, [300, 3400], "bandpass", fs=synth.ESPEAK_RATE, output="sos"), samples).astype(np.float32)
    if condition == "white":
        noise = rng.normal(0, 1, len(samples))
    elif condition == "pink":
        spectrum = np.fft.rfft(rng.normal(0, 1, len(samples)))
        noise = np.fft.irfft(spectrum / np.sqrt(np.arange(1, len(spectrum) + 1)), len(samples))
    elif condition == "babble":
        noise = np.resize(other, len(samples))
    else:
        return samples
    noise = noise * np.sqrt(speech_power / snr / max(np.mean(noise ** 2), 1e-12))
    return (samples + noise).astype(np.float32)


def little_archive(root: str, per_language: int, texts: dict, seed: int = 11) -> dict[str, str]:
    """root/<n>.<ext> speech files in unseen voices under archive conditions, plus files
    without speech; path -> language (speech files only)."""
    rng = np.random.default_rng(seed)
    conditions = ["clean", "white", "pink", "babble", "telephone"]
    formats = [synth.FileSpec(0, "wav", 8000, 1), synth.FileSpec(0, "flac", 44100, 2),
               synth.FileSpec(0, "mp3", 22050, 1), synth.FileSpec(0, "ogg", 48000, 2)]
    languages = list(synth.LANGUAGES)
    truth = {}
    for i in range(per_language * len(languages)):
        language, other = languages[i % 2], languages[1 - i % 2]
        voice = synth.random_voice(language, rng, UNSEEN_VOICES)
        samples = synth.recording(language, float(rng.uniform(15, 60)), rng, voice, texts[language])
        babble = synth.recording(other, 10.0, rng, synth.random_voice(other, rng, UNSEEN_VOICES), texts[other])
        samples = degraded(samples, conditions[i % len(conditions)], babble, rng)
        fmt = formats[(i // len(conditions)) % len(formats)]
        path = f"{i:03d}-{conditions[i % len(conditions)]}.{fmt.ext}"
        synth.write(os.path.join(root, path), samples, synth.ESPEAK_RATE, fmt.rate, fmt.channels)
        truth[path] = language
    synth.write(os.path.join(root, "silence.wav"), np.zeros(synth.ESPEAK_RATE * 20, np.float32))
    synth.write(os.path.join(root, "music.ogg"), synth.music(30.0, rng), target_rate=44100)
    synth.write(os.path.join(root, "hiss.flac"), rng.normal(0, 0.05, synth.ESPEAK_RATE * 20).astype(np.float32))
    with open(os.path.join(root, "corrupt.mp3"), "wb") as f:
        f.write(rng.bytes(4000))
    return truth


def little(per_language: int, archive_per_language: int, keep_corpus: bool, overrides: dict) -> None:
    """The little scenario: `langsort run --weights none` at defaults (or `overrides` of the
    run settings, to measure a lever), end to end."""
    import pandas as pd

    from langsort.pipeline import RunSettings, run

    base = out_dir("accuracy_little")
    train_text, held_out_text = split_texts()
    labelled, unsorted = os.path.join(base, "labelled"), os.path.join(base, "unsorted")
    if not (keep_corpus and os.path.isdir(unsorted)):
        shutil.rmtree(base, ignore_errors=True)
        synth.labelled_corpus(labelled, per_language, (20, 90), seed=3, variants=SEEN_VOICES,
                              texts=train_text)
        with open(os.path.join(base, "truth.json"), "w") as f:
            json.dump(little_archive(unsorted, archive_per_language, held_out_text), f)
    with open(os.path.join(base, "truth.json")) as f:
        truth = json.load(f)
    shutil.rmtree(os.path.join(base, "out"), ignore_errors=True)
    settings = dataclasses.replace(RunSettings(weights="none"), **overrides)
    init_ray()
    with Stopwatch() as whole:
        run(labelled, unsorted, os.path.join(base, "out"), settings, progress=False, echo=print)
    files = pd.read_parquet(os.path.join(base, "out", "manifests", "files.parquet")).set_index("path")
    speech = files.loc[list(truth)]
    right = speech.language.eq(pd.Series(truth))
    wrong_ok = speech.status.eq("ok") & ~right
    others = files.drop(index=list(truth))
    print(f"accuracy[little]: {per_language} labelled recordings a language (20-90 s, voices {','.join(SEEN_VOICES)}); "
          f"archive of {len(truth)} speech files in voices {','.join(UNSEEN_VOICES)} (clean, white/pink/babble noise "
          f"5-30 dB, telephone; 8-48 kHz wav/flac/mp3/ogg) + {len(others)} without speech")
    print(f"accuracy[little]: file accuracy {right.mean():.3f} ({int(right.sum())} of {len(truth)}), confidently wrong "
          f"{int(wrong_ok.sum())}, unknown {int(speech.status.ne('ok').sum())}; files without speech: "
          + ", ".join(f"{p} {files.status[p]}" for p in others.index))
    model_metrics = json.load(open(os.path.join(base, "out", "model", "metrics.json")))
    for done in model_metrics.get("self_training", []):
        round_dir = os.path.join(base, "out", "model", "self-training", f"round-{done['round']}")
        pseudo = pd.read_parquet(os.path.join(round_dir, "pseudo", "files.parquet"))
        original = pseudo.path.map(archive_path)
        pseudo_right = pseudo.label.to_numpy() == original.map(truth).to_numpy()
        teacher = pd.read_parquet(os.path.join(round_dir, "labels", "files.parquet")).set_index("path").loc[list(truth)]
        print(f"accuracy[little]: self-training round {done['round']}: teacher file accuracy "
              f"{teacher.language.eq(pd.Series(truth)).mean():.3f}; {len(pseudo)} pseudo-labelled recordings "
              f"(a file, or a mixed file's turns in one language), {int((~pseudo_right).sum())} of them wrongly; "
              f"validation clip accuracy {done['teacher_validation']:.3f} -> {done['student_validation']:.3f}")
    by_language = right.groupby(pd.Series(truth)).mean()
    print("accuracy[little]: by language " + ", ".join(f"{k} {v:.2f}" for k, v in by_language.items())
          + (f"; settings changed from the defaults: {overrides}" if overrides else ""))
    print(f"accuracy[little]: whole run {whole.seconds / 60:.1f} min on {machine()} (target: 0.97, "
          f"at most 1 confidently wrong, 30 min)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=["default", "little"], default="default")
    parser.add_argument("--archive-per-language", type=int, default=30, help="little: unsorted speech files a language")
    parser.add_argument("--per-language", type=int, default=None, help="labelled recordings a language (36; little: 20)")
    parser.add_argument("--unseen-per-language", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=None, help="default: the training default")
    parser.add_argument("--augment", type=int, default=None, help="default: 2")
    parser.add_argument("--image-size", type=int, default=None, help="default: the training default")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the training default")
    parser.add_argument("--width", type=float, default=None, help="little: MobileNetV2 width multiplier (default: run's)")
    parser.add_argument("--patience", type=int, default=None, help="little: early-stopping patience (default: run's)")
    parser.add_argument("--min-confidence", type=float, default=None, help="little: pseudo-label bar (default: run's)")
    parser.add_argument("--rounds", type=int, default=None, help="little: self-training rounds (default: run's)")
    parser.add_argument("--seed", type=int, default=None, help="little: split and training seed (default: run's)")
    parser.add_argument("--teachers", type=int, default=None,
                        help="little: first-round teachers averaged (default: run's)")
    parser.add_argument("--keep-corpus", action="store_true", help="reuse the corpus of an earlier run")
    args = parser.parse_args()
    if args.scenario == "little":
        overrides = {k: v for k, v in dict(epochs=args.epochs, augment=args.augment, image_size=args.image_size,
                                            batch_size=args.batch_size, self_training_rounds=args.rounds,
                                            patience=args.patience, min_confidence=args.min_confidence,
                                            width=args.width, seed=args.seed, teachers=args.teachers).items()
                     if v is not None}
        little(args.per_language or 20, args.archive_per_language, args.keep_corpus, overrides)
        return
    args.per_language = args.per_language or 36
    args.epochs = args.epochs or TrainOptions.epochs
    args.augment = 2 if args.augment is None else args.augment

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
          f"on {machine()}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
