"""Fault injection: `langsort label` and `langsort sort --mode move` killed with SIGKILL at
random points, many times, then run to completion; the final manifests must equal an
uninterrupted run's and no archive file may be lost or duplicated. Then what a hostile
archive does: FIFOs and links to devices among the files (no hang: error rows), files
rewritten and deleted while label runs (after restoring them, the manifests equal the
reference: nothing poisoned), and two label runs into one --out (one refuses, nothing lost).

    python bench/faults.py [--kills 20] [--files 24] [--rewrites 5]

Prints two lines: inputs tried, crashes, rows lost, duplicates, kills survived; then hangs,
poisoned re-runs, concurrent runs that lost rows silently.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
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
    parser.add_argument("--rewrites", type=int, default=5)
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

    hangs, special_rows = hostile_specials(base, archive, model, timeout=10 * reference_s + 60)
    poisoned, rewrite_crashes = midrun_rewrites(base, archive, model, ref_files, rng, args.rewrites, reference_s)
    silent, refused_clearly = concurrent_runs(base, archive, model)
    print(f"hostile: hangs {hangs}, FIFO/device rows that are errors {special_rows}/3; mid-run rewrites: "
          f"{args.rewrites} runs, poisoned re-runs {poisoned}, crashes {rewrite_crashes}; concurrent runs into one "
          f"--out: silent losses {silent}, second run refused in one line {refused_clearly}")


def hostile_specials(base: str, archive: str, model: str, timeout: float) -> tuple[int, int]:
    """The archive plus a FIFO, a link to /dev/zero and a link to /dev/urandom named as audio:
    label must finish (hangs counts runs killed at `timeout`) with error rows for all three."""
    hostile = os.path.join(base, "hostile")
    shutil.copytree(archive, hostile)
    os.mkfifo(os.path.join(hostile, "pipe.wav"))
    os.symlink("/dev/zero", os.path.join(hostile, "zero.wav"))
    os.symlink("/dev/urandom", os.path.join(hostile, "random.flac"))
    out = os.path.join(base, "hostile_manifests")
    code, _ = run(["label", hostile, "--model", model, "--out", out], kill_after=timeout)
    if code is None:
        return 1, 0
    files = pd.read_parquet(os.path.join(out, "files.parquet")).set_index("path")
    return 0, int((files.status.reindex(["pipe.wav", "zero.wav", "random.flac"]) == "error").sum())


def midrun_rewrites(base: str, archive: str, model: str, reference: pd.DataFrame, rng, trials: int,
                    reference_s: float) -> tuple[int, int]:
    """While label runs, one file is rewritten with another's bytes and one deleted, at a
    random moment; after restoring both, a re-run must give the reference manifests."""
    poisoned, crashes = 0, 0
    audio = sorted(os.path.relpath(os.path.join(d, f), archive) for d, _, fs in os.walk(archive) for f in fs
                   if f.endswith((".wav", ".flac", ".mp3", ".ogg")) and os.path.getsize(os.path.join(d, f)) > 1000)
    for trial in range(trials):
        tree, out = os.path.join(base, f"rewrite{trial}"), os.path.join(base, f"rewrite{trial}_manifests")
        shutil.copytree(archive, tree)
        changed, deleted, donor = (os.path.join(tree, p) for p in rng.choice(audio, 3, replace=False))
        originals = {p: open(p, "rb").read() for p in (changed, deleted)}

        def meddle():
            time.sleep(float(rng.uniform(0.5, reference_s)))
            shutil.copyfile(donor, changed)
            os.remove(deleted)

        meddler = threading.Thread(target=meddle)
        meddler.start()
        code, _ = run(["label", tree, "--model", model, "--out", out])
        meddler.join()
        crashes += int(code != 0)
        for path, data in originals.items():
            with open(path, "wb") as f:
                f.write(data)
        code, _ = run(["label", tree, "--model", model, "--out", out])
        crashes += int(code != 0)
        files = pd.read_parquet(os.path.join(out, "files.parquet"))
        poisoned += int(not files.drop(columns=["model_sha256"]).equals(reference.drop(columns=["model_sha256"])))
    return poisoned, crashes


def concurrent_runs(base: str, archive: str, model: str) -> tuple[int, bool]:
    """A (the whole archive) and B (two files), one second apart, into one --out: one of them
    must refuse in one line, and files.parquet must hold exactly the other's input."""
    small = os.path.join(base, "small")
    os.makedirs(small)
    for name in sorted(n for n in os.listdir(os.path.join(archive, "00")))[:2]:
        shutil.copyfile(os.path.join(archive, "00", name), os.path.join(small, name))
    out = os.path.join(base, "shared_manifests")
    results = {}
    first = threading.Thread(target=lambda: results.update(a=run(["label", archive, "--model", model, "--out", out])))
    first.start()
    time.sleep(1.0)
    results["b"] = run(["label", small, "--model", model, "--out", out])
    first.join()
    codes = {k: code for k, (code, _) in results.items()}
    refusals = [k for k, (code, err) in results.items() if code == 2 and "another langsort label" in err]
    winners = [k for k, code in codes.items() if code == 0]
    if len(winners) != 1 or len(refusals) != 1:
        return 1, bool(refusals)
    expected = {"a": archive, "b": small}[winners[0]]
    listed = {os.path.relpath(os.path.join(d, f), expected) for d, _, fs in os.walk(expected) for f in fs}
    written = set(pd.read_parquet(os.path.join(out, "files.parquet")).path)
    return int(written != listed), True


if __name__ == "__main__":
    main()
