"""Peak memory while preparing one 60-minute recording.

Measures the process that runs the prepare core (`cut_spans`, what each Ray task runs)
in a fresh interpreter: once with the default 10-minute spans and once with the whole hour
as one span (the worst case a task can meet), for a 44.1 kHz stereo FLAC and a 16 kHz WAV.

    python bench/prepare_memory.py [--minutes 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
from common import HERE, out_dir, shared_texts

from langsort import synth

MEASURE = """
import sys, time
sys.path.insert(0, {repo!r})
from langsort.corpus import InputFile
from langsort.clips import cut_spans, probe
from langsort.prepare import PrepareConfig, plan_spans
file = InputFile({path!r}, "hour")
config = PrepareConfig(span_seconds={span})
info = probe(file).info
start = time.perf_counter()
clips = sum(len(cut_spans([work], config)[0].clips) for work in plan_spans(file, info, config))
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork+exec
peak_kb = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])
print(peak_kb / 1024, clips, info.duration_s / seconds)
"""


def hour_of_speech(minutes: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    texts = shared_texts() or {}
    pieces = [synth.recording(language, 60.0, rng, lines=texts.get(language)) for language in ("spanish", "maya")]
    return np.concatenate([pieces[i % 2] for i in range(int(minutes))])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    args = parser.parse_args()
    base = out_dir("prepare_memory")
    samples = hour_of_speech(args.minutes)
    files = {
        "flac 44.1 kHz stereo": synth.write(os.path.join(base, "hour.flac"), samples, synth.ESPEAK_RATE, 44100, 2),
        "wav 16 kHz mono": synth.write(os.path.join(base, "hour.wav"), samples, synth.ESPEAK_RATE, 16000, 1),
    }
    del samples
    repo = os.path.dirname(HERE)
    for name, path in files.items():
        for span in (600, 3600 * 24):
            code = MEASURE.format(repo=repo, path=path, span=span)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            peak_mb, clips, speed = out.split()
            label = "10-min spans" if span == 600 else "one span"
            print(f"prepare_memory: {args.minutes:.0f} min {name}, {label}: peak {float(peak_mb):.0f} MB, "
                  f"{clips} clips, {float(speed):.0f}x real time on one core")


if __name__ == "__main__":
    main()
