"""Short recordings (spots, announcements, one-sentence answers): 1.5-3 s of speech with
silence around it, in voices never trained on. Before, such files were `unknown` ("too
short"); now a file whose speech reaches 1.5 s is labelled from one shorter clip.

    python bench/short_files.py [--model MODEL.onnx] [--per-language 15]

Without --model it trains one as bench/accuracy.py does. Prints the share labelled, the
accuracy of the labelled ones and how many are confidently wrong (ok but wrong).
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import pandas as pd
from accuracy import UNSEEN_VOICES, trained_model
from common import out_dir, split_texts

from langsort import synth
from langsort.label import label
from langsort.runtime import init_ray


def make_short_files(root: str, per_language: int, texts: dict, seed: int = 9) -> dict[str, str]:
    """root/<n>.<ext>: one sentence each (1.5-3 s of speech), silence around it; path -> language."""
    rng = np.random.default_rng(seed)
    truth = {}
    for language, lines in texts.items():
        short = [line for line in lines if 3 <= len(line.split()) <= 7]
        made = 0
        while made < per_language:
            voice = synth.Voice(language, str(rng.choice(UNSEEN_VOICES)), int(rng.integers(140, 180)),
                                int(rng.integers(35, 65)))
            speech = synth.speak(str(rng.choice(short)), voice)
            if not 1.5 <= len(speech) / synth.ESPEAK_RATE <= 3.0:
                continue
            silence = [np.zeros(int(rng.uniform(1.0, 3.0) * synth.ESPEAK_RATE), np.float32) for _ in range(2)]
            fmt = synth.FORMAT_MIX[made % len(synth.FORMAT_MIX)]
            path = f"{language[:2]}-{made:02d}.{fmt.ext}"
            synth.write(os.path.join(root, path), np.concatenate([silence[0], speech, silence[1]]), synth.ESPEAK_RATE,
                        fmt.rate, fmt.channels)
            truth[path] = language
            made += 1
    return truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="an exported .onnx; default: train one on seen voices")
    parser.add_argument("--per-language", type=int, default=15)
    args = parser.parse_args()
    base = out_dir("short_files")
    _, held_out = split_texts()
    recordings = os.path.join(base, "recordings")
    shutil.rmtree(recordings, ignore_errors=True)
    truth = make_short_files(recordings, args.per_language, held_out)
    init_ray()
    model = args.model or trained_model(base)[-1]
    manifests = os.path.join(base, "manifests")
    shutil.rmtree(manifests, ignore_errors=True)
    label(recordings, model, manifests, progress=False)
    files = pd.read_parquet(os.path.join(manifests, "files.parquet"))
    files["truth"] = files.path.map(truth)
    labelled = files[files.n_clips > 0]
    ok = files[files.status == "ok"]
    print(f"short_files: {len(files)} recordings of 1.5-3 s of speech, voices {','.join(UNSEEN_VOICES)}: "
          f"{len(labelled)} labelled ({len(labelled) / len(files):.0%}), {len(files) - len(labelled)} too short")
    print(f"short_files: file accuracy {(files.language == files.truth).mean():.3f} over all "
          f"({(labelled.language == labelled.truth).mean():.3f} of the labelled; {len(ok)} ok above the threshold), "
          f"confidently wrong {int((ok.language != ok.truth).sum())}")


if __name__ == "__main__":
    main()
