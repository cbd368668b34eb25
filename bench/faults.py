"""Fault injection: `langsort label` and `langsort sort --mode move` killed with SIGKILL at
random points, many times, then run to completion; the final manifests must equal an
uninterrupted run's and no archive file may be lost or duplicated.

    python bench/faults.py [--kills 20] [--files 24]

Prints one line: inputs tried, crashes, rows lost, duplicates, kills survived.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
from common import out_dir
from label_throughput import build_archive, untrained_model

LANGSORT = [sys.executable, "-m", "langsort"]


def run(args: list[str], kill_after: float | None = None) -> tuple[int | None, str]:
    """Run a langsort command in its own session; SIGKILL it and its children after
    `kill_after` seconds. Returns (exit code or None when killed, stderr)."""
    proc = subprocess.Popen(LANGSORT + args + ["--quiet"] if args[0] == "label" else LANGSORT + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=kill_after)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate()
        return None, ""


def manifests(directory: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_parquet(os.path.join(directory, name)) for name in ("files.parquet", "clips.parquet"))


def checksums(root: str) -> list[str]:
    return sorted(hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
                  for d, _, files in os.walk(root) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--files", type=int, default=24)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = out_dir("faults")
    shutil.rmtree(base, ignore_errors=True)
    model = untrained_model(os.path.join(base, "model"), image_size=64)
    archive = os.path.join(base, "archive")
    build_archive(archive, args.files, 20.0)
    for name, content in (("empty.wav", b""), ("notes.mp3", b"text renamed .mp3"), ("truncated.wav", b"RIFF\x24\x00")):
        with open(os.path.join(archive, name), "wb") as f:
            f.write(content)
    inputs = sum(len(files) for _, _, files in os.walk(archive))

    started = time.perf_counter()
    code, err = run(["label", archive, "--model", model, "--out", os.path.join(base, "reference")])
    reference_s = time.perf_counter() - started
    crashes = int(code != 0)
    ref_files, ref_clips = manifests(os.path.join(base, "reference"))

    out = os.path.join(base, "killed")
    survived, half_written, attempts = 0, 0, 0
    while survived < args.kills and attempts < 3 * args.kills:  # runs that finish before the kill do not count
        attempts += 1
        code, err = run(["label", archive, "--model", model, "--out", out], kill_after=float(rng.uniform(1.0, reference_s)))
        crashes += int(code not in (None, 0))
        survived += int(code is None)
        if os.path.exists(os.path.join(out, "files.parquet")):
            try:
                manifests(out)
            except Exception:
                half_written += 1
    code, err = run(["label", archive, "--model", model, "--out", out])
    crashes += int(code != 0)
    files, clips = manifests(out)
    key = ["path", "clip_index"]
    lost = len(set(ref_files.path) - set(files.path)) + len(
        set(map(tuple, ref_clips[key].values)) - set(map(tuple, clips[key].values)))
    duplicates = int(files.path.duplicated().sum() + clips.duplicated(key).sum())
    identical = files.equals(ref_files) and clips.equals(ref_clips)

    # sort --mode move, killed at random points: every file exactly once, same bytes.
    # Each trial starts from a fresh copy of the archive, is killed, then run to the end.
    moving, dest = os.path.join(base, "moving"), os.path.join(base, "sorted")
    moving_manifests = os.path.join(base, "moving_manifests")
    shutil.copytree(archive, moving)
    sums = checksums(moving)
    subprocess.run(LANGSORT + ["label", moving, "--model", model, "--out", moving_manifests, "--quiet"],
                   check=True, capture_output=True)
    sort_args = ["sort", moving_manifests, "--dest", dest, "--mode", "move"]
    started = time.perf_counter()
    run(sort_args)
    move_s = time.perf_counter() - started
    move_kills, moved_lost, moved_duplicates = 0, 0, 0
    for _ in range(args.kills):
        shutil.rmtree(moving)
        shutil.rmtree(dest)
        shutil.copytree(archive, moving)
        code, _ = run(sort_args, kill_after=float(rng.uniform(0.2, move_s)))
        move_kills += int(code is None)
        crashes += int(code not in (None, 0))
        code, _ = run(sort_args)
        crashes += int(code != 0)
        after = checksums(moving) + checksums(dest)
        moved_lost += len(set(sums) - set(after))
        moved_duplicates += len(after) - len(sums)

    print(f"faults: inputs {inputs}, crashes {crashes}, rows lost {lost}, duplicates {duplicates}, "
          f"kills survived {survived} (label) + {move_kills} (sort --mode move); half-written manifests "
          f"{half_written}; final manifests identical to an uninterrupted run: {identical}; move: files lost "
          f"{moved_lost}, duplicated {moved_duplicates}")


if __name__ == "__main__":
    main()
