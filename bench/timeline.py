"""The language timeline (`segments.parquet`) on synthesized code-switched recordings.

Each mixed recording alternates Spanish and K'iche' stretches of 5-40 s spoken by one voice
(the same espeak-ng variant, speed and pitch in both languages: one bilingual speaker) with
the pause of a speaker turn (0.3-1.2 s) between stretches; monolingual recordings are one
language throughout. Voices never appear in training, sentences are held out, and some
recordings get noise (10-30 dB SNR) or a telephone band. Scored on a 10 ms grid:
- speech time with the right language (truth: the stretches, pauses inside them included);
- language-change boundaries found within +-1.5 s (F1);
- monolingual recordings that come out as one language, the right one, not mixed.
Speech time is also broken down by voice and language, which says where the error lives.

    python bench/timeline.py [--model MODEL.onnx | --seed N --rounds R --as-run] [--mixed 16] [--mono 12]

Without --model it trains one as bench/accuracy.py does (seen voices only), then self-trains
as `langsort train --unlabelled` (and `langsort run`) do, with these recordings as the
unlabelled archive (their speech, never their truth), and scores the labelled-only model (the
first of the averaged first-round teachers), the teachers' average, each round's student, and the
final model (the last students averaged) that MODEL_DIR holds.
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import pandas as pd
from accuracy import SEEN_VOICES, UNSEEN_VOICES, trained_model
from common import Stopwatch, out_dir, split_texts
from scipy.signal import butter, sosfilt

from langsort import synth
from langsort.label import label
from langsort.model import read_model_info
from langsort.runtime import init_ray
from langsort.selftrain import AVERAGED_STUDENTS, AVERAGED_TEACHERS, ROUNDS, RUN_ROUNDS, WORK_DIR, archive_path

GRID_S = 0.01
TOLERANCE_S = 1.5
LANGUAGES = list(synth.LANGUAGES)


def trimmed(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > 1e-3)
    return samples[: loud[-1] + 1] if len(loud) else samples


def degrade(samples: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise":
        power = np.mean(samples[np.abs(samples) > 1e-3] ** 2)
        snr_db = rng.uniform(10, 30)
        samples = samples + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples)).astype(np.float32)
    elif kind == "telephone":
        samples = sosfilt(butter(4, [300, 3400], "bandpass", fs=synth.ESPEAK_RATE, output="sos"), samples)
    return samples.astype(np.float32)


def make_recordings(root: str, mixed: int, mono: int, texts: dict, seed: int = 5) -> pd.DataFrame:
    """root/<name>.<ext> and the truth: one row per stretch (name, start_s, end_s, language, voice)."""
    rng = np.random.default_rng(seed)
    truth = []
    for n in range(mixed + mono):
        name = f"{'mixed' if n < mixed else 'mono'}-{n:02d}"
        variant, speed, pitch = str(rng.choice(UNSEEN_VOICES)), int(rng.integers(135, 180)), int(rng.integers(35, 65))
        first = int(rng.integers(2))
        stretches = int(rng.integers(3, 6)) if n < mixed else 1
        parts, position = [np.zeros(int(rng.uniform(0.3, 1.5) * synth.ESPEAK_RATE), np.float32)], 0.0
        position = len(parts[0]) / synth.ESPEAK_RATE
        for k in range(stretches):
            language = LANGUAGES[(first + k) % 2]
            seconds = rng.uniform(5, 40) if n < mixed else rng.uniform(20, 60)
            voice = synth.Voice(language, variant, speed, pitch)
            speech = trimmed(synth.recording(language, seconds, rng, voice=voice, lines=texts[language]))
            truth.append((name, position, position + len(speech) / synth.ESPEAK_RATE, language, variant))
            pause = np.zeros(int(rng.uniform(0.3, 1.2) * synth.ESPEAK_RATE), np.float32)
            parts += [speech, pause]
            position += (len(speech) + len(pause)) / synth.ESPEAK_RATE
        samples = degrade(np.concatenate(parts), ["clean", "noise", "telephone"][n % 3], rng)
        fmt = synth.FORMAT_MIX[n % len(synth.FORMAT_MIX)]
        path = f"{name}.{fmt.ext}"
        synth.write(os.path.join(root, path), samples, synth.ESPEAK_RATE, fmt.rate, fmt.channels)
        truth = [(path if t[0] == name else t[0], *t[1:]) for t in truth]
    return pd.DataFrame(truth, columns=["path", "start_s", "end_s", "language", "voice"])


def on_grid(intervals, length_s: float) -> np.ndarray:
    """Language index per 10 ms step (-1: none)."""
    grid = np.full(int(np.ceil(length_s / GRID_S)) + 1, -1)
    for start, end, language in intervals:
        if language in LANGUAGES:
            grid[int(round(start / GRID_S)) : int(round(end / GRID_S))] = LANGUAGES.index(language)
    return grid


def changes(intervals) -> list[float]:
    """Times where the language changes between consecutive intervals (midpoint of the gap)."""
    named = [(s, e, lang) for s, e, lang in intervals if lang in LANGUAGES]
    return [(a[1] + b[0]) / 2 for a, b in zip(named, named[1:]) if a[2] != b[2]]


def matched(truth: list[float], found: list[float]) -> int:
    used, hits = set(), 0
    for t in truth:
        near = [i for i, f in enumerate(found) if i not in used and abs(f - t) <= TOLERANCE_S]
        if near:
            used.add(min(near, key=lambda i: abs(found[i] - t)))
            hits += 1
    return hits


def score(truth: pd.DataFrame, segments: pd.DataFrame, files: pd.DataFrame) -> dict:
    hits = n_true = n_found = mono_ok = mono = 0
    by_voice = {}  # (voice, language) -> [right, speech] 10 ms steps; their sums are the whole figure
    for path, stretches in truth.groupby("path"):
        spans = list(stretches[["start_s", "end_s", "language"]].itertuples(index=False, name=None))
        mine = segments[segments.path == path].sort_values("start_s")
        found = [(s, e, lang) for s, e, lang in mine[["start_s", "end_s", "language"]].itertuples(index=False, name=None)]
        length = max([e for _, e, _ in spans + found] + [0.0])
        expected, predicted = on_grid(spans, length), on_grid(found, length)
        for index, language in enumerate(LANGUAGES):
            counts = by_voice.setdefault((stretches.voice.iloc[0], language), [0, 0])
            counts[0] += int(((expected == index) & (predicted == index)).sum())
            counts[1] += int((expected == index).sum())
        true_changes, found_changes = changes(spans), changes(found)
        hits += matched(true_changes, found_changes)
        n_true += len(true_changes)
        n_found += len(found_changes)
        if len(spans) == 1:
            mono += 1
            row = files.set_index("path").loc[path]
            mono_ok += bool(not row.mixed and list(row.languages) == [spans[0][2]])
    precision = hits / n_found if n_found else 1.0
    recall = hits / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    right, speech = np.sum(list(by_voice.values()), axis=0)
    return dict(time_accuracy=right / speech, boundary_precision=precision, boundary_recall=recall, boundary_f1=f1,
                changes=n_true, mono_one_language=mono_ok / mono if mono else float("nan"), mono=mono,
                by_voice={key: r / n for key, (r, n) in sorted(by_voice.items()) if n})


def taught(truth: pd.DataFrame, clips: pd.DataFrame) -> tuple[float, float]:
    """Seconds of the pseudo-labelled clips a self-training round taught (as recorded, not
    their perturbed copies), and the seconds inside them that the truth has in another language."""
    clips = clips[clips.augment == 0]
    total = wrong = 0.0
    for path, language, start, end in zip(clips.path, clips.label, clips.start_s, clips.end_s):
        original = archive_path(path)
        total += end - start
        for t in truth[(truth.path == original) & (truth.language != language)].itertuples():
            wrong += max(0.0, min(t.end_s, end) - max(t.start_s, start))
    return total, wrong


def model_name(model: str) -> str:
    meta = read_model_info(model).meta
    epochs = meta.details.get("options", {}).get("epochs")
    return f"{meta.backbone} {meta.image_size} px" + (f", {epochs} epochs" if epochs else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="an exported .onnx; default: train one on seen voices")
    parser.add_argument("--mixed", type=int, default=16)
    parser.add_argument("--mono", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0, help="without --model: the training seed")
    parser.add_argument("--rounds", type=int, help=f"without --model: self-training rounds on the recordings "
                        f"(default {ROUNDS} as langsort train, {RUN_ROUNDS} --as-run; 0: none)")
    parser.add_argument("--as-run", action="store_true", help="without --model: train as `langsort run` does from "
                        "scratch (its image size, epochs and teachers), not at `langsort train`'s defaults")
    parser.add_argument("--keep-recordings", action="store_true", help="reuse the recordings of an earlier run")
    args = parser.parse_args()
    base = out_dir("timeline")
    _, held_out = split_texts()
    recordings, truth_csv = os.path.join(base, "recordings"), os.path.join(base, "truth.csv")
    if args.keep_recordings and os.path.isfile(truth_csv):
        truth = pd.read_csv(truth_csv)
    else:
        shutil.rmtree(recordings, ignore_errors=True)
        truth = make_recordings(recordings, args.mixed, args.mono, held_out)
        truth.to_csv(truth_csv, index=False)

    init_ray()
    if args.model:
        models = [("", args.model, None)]
    else:  # (name, model, the pseudo-labelled clips it learnt from)
        rounds = args.rounds if args.rounds is not None else RUN_ROUNDS if args.as_run else ROUNDS
        exported = trained_model(base, args.seed, unlabelled=recordings, rounds=rounds, as_run=args.as_run)
        work = os.path.join(base, "model", WORK_DIR)
        models = [(f"[{'seen voices only' if r == 0 else f'self-training round {r}'}]", path,
                   os.path.join(work, f"round-{r}", "pseudo", "clips.parquet") if r else None)
                  for r, path in enumerate(exported[: rounds + 1])]
        if len(exported) > rounds + 1:  # the final model, the last students averaged
            models.append((f"[final: the last {AVERAGED_STUDENTS} students averaged]", exported[-1], None))
        averaged = os.path.join(work, "round-0", AVERAGED_TEACHERS)
        if os.path.isfile(averaged):  # what labelled the recordings for the first round's pseudo-labels
            models.insert(1, ("[first-round teachers averaged]", averaged, None))
    audio_h = truth.groupby("path").end_s.max().sum() / 3600
    for name, model, pseudo in models:
        manifests = os.path.join(base, "manifests")
        shutil.rmtree(manifests, ignore_errors=True)
        with Stopwatch() as watch:
            label(recordings, model, manifests, progress=False)
        segments = pd.read_parquet(os.path.join(manifests, "segments.parquet"))
        figures = score(truth, segments, pd.read_parquet(os.path.join(manifests, "files.parquet")))
        print(f"timeline{name}: {args.mixed} code-switched + {args.mono} monolingual recordings ({audio_h:.2f} h), "
              f"voices {','.join(UNSEEN_VOICES)} (labelled training: {','.join(SEEN_VOICES)}), "
              f"{len(segments)} segments, labelled in {watch.seconds:.0f} s by {model_name(model)}")
        print(f"timeline{name}: speech time with the right language {figures['time_accuracy']:.3f} (target >= 0.92)")
        print(f"timeline{name}: language changes within +-{TOLERANCE_S} s: F1 {figures['boundary_f1']:.3f} "
              f"(precision {figures['boundary_precision']:.3f}, recall {figures['boundary_recall']:.3f}, "
              f"{figures['changes']} true changes) (target >= 0.85)")
        print(f"timeline{name}: monolingual recordings as one language {figures['mono_one_language']:.3f} "
              f"({figures['mono']} recordings) (target >= 0.97)")
        by_voice = figures["by_voice"].items()
        print(f"timeline{name}: speech time with the right language by voice: "
              + ", ".join(f"{voice} {language} {share:.2f}" for (voice, language), share in by_voice))
        if pseudo:
            clips = pd.read_parquet(pseudo, columns=["path", "label", "start_s", "end_s", "augment"])
            seconds, wrong = taught(truth, clips)
            print(f"timeline{name}: it learnt from {seconds / 60:.1f} min of pseudo-labelled clips of these "
                  f"recordings, {wrong:.0f} s ({wrong / seconds:.1%}) of them in the other language")


if __name__ == "__main__":
    main()
