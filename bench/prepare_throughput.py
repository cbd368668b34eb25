"""Audio-seconds prepared per wall-second by `langsort prepare` at default settings.

Builds a corpus of HOURS of speech (espeak-ng, from ../shared/corpus-text when present) in
the archive mix of formats and rates, then times prepare over a local Ray instance. The
Ray start-up is reported separately: it is paid once per job, not per hour of audio.

    python bench/prepare_throughput.py [--hours 2] [--mix archive|wav16k]
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
from common import Stopwatch, machine, out_dir, shared_texts

from langsort import synth
from langsort.prepare import prepare
from langsort.runtime import init_ray


MIXES = {
    # what archives hold: 8-48 kHz, mono and stereo, wav/flac/mp3/ogg (langsort.synth.FORMAT_MIX)
    "archive": synth.FORMAT_MIX,
    # digitised broadcast/fieldwork copies already at 16 kHz mono
    "wav16k": [synth.FileSpec(0, "wav", 16000, 1)],
}


def build(root: str, hours: float, mix: list, seed: int = 0) -> float:
    """Ten distinct 60 s recordings per language, written as many files in the format mix."""
    rng = np.random.default_rng(seed)
    texts = shared_texts()
    recordings = [
        (language, synth.recording(language, 60.0, rng, lines=(texts or {}).get(language)))
        for language in synth.LANGUAGES
        for _ in range(10)
    ]
    n_files = int(hours * 60)
    for i in range(n_files):
        language, samples = recordings[i % len(recordings)]
        fmt = mix[i % len(mix)]
        synth.write(os.path.join(root, language, f"{i:04d}.{fmt.ext}"), samples, synth.ESPEAK_RATE, fmt.rate, fmt.channels)
    return n_files * 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--mix", choices=sorted(MIXES), default="archive")
    args = parser.parse_args()
    base = out_dir(f"prepare_throughput_{args.mix}")
    corpus, prepared = os.path.join(base, "corpus"), os.path.join(base, "prepared")
    shutil.rmtree(base, ignore_errors=True)
    audio_s = build(corpus, args.hours, MIXES[args.mix])
    with Stopwatch() as ray_start:
        init_ray()
    with Stopwatch() as run:
        summary = prepare(corpus, prepared, progress=False)
    print(
        f"prepare_throughput[{args.mix}]: {audio_s / run.seconds:.0f}x real time "
        f"({audio_s / 3600:.2f} h of audio, {summary.files} files, {summary.clips} clips, "
        f"{run.seconds:.1f} s wall on {machine()}; ray start {ray_start.seconds:.1f} s not included)"
    )


if __name__ == "__main__":
    main()
