"""`langsort sort`: the archive sorted into DEST/<language>/<relative path> from the manifest.

Files that are not `ok` go to DEST/_unknown/ and DEST/_error/; a file a person reviewed
(reviews.parquet) goes where they decided. Safety rules, because this
touches the archive itself: a target that exists is never overwritten (an identical one
counts as done, so a re-run after an interruption finishes the job); a path that would
land outside DEST is refused; copy and cross-device move write a temporary file and
rename it, so a killed run never leaves a half file under a real name, and move removes
the source only after the target is complete.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import uuid
from dataclasses import dataclass, field

import pandas as pd

from langsort import manifest, reviews
from langsort.errors import LangsortError
from langsort.parts import input_root_of

MODES = ("copy", "link", "move")
UNKNOWN_DIR, ERROR_DIR, MIXED_DIR = "_unknown", "_error", "_mixed"
MIXED_CHOICES = ("folder", "dominant")  # mixed files in DEST/_mixed/, or with their dominant language


@dataclass(frozen=True)
class Step:
    source: str
    target: str
    folder: str  # language, _unknown or _error


@dataclass
class SortReport:
    done: int = 0
    already: int = 0  # identical target existed (an earlier, interrupted run)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    by_folder: dict[str, int] = field(default_factory=dict)


def folder_of(row, mixed: str = "folder", decided: str | None = None) -> str:
    """The DEST folder of a file row: what a person decided, else its language, _mixed,
    _unknown or _error."""
    if decided is not None:
        return UNKNOWN_DIR if decided in reviews.NOT_A_LANGUAGE else decided
    if row.status == manifest.STATUS_OK:
        return MIXED_DIR if mixed == "folder" and getattr(row, "mixed", False) is True else row.language
    return UNKNOWN_DIR if row.status == manifest.STATUS_UNKNOWN else ERROR_DIR


def plan(files: pd.DataFrame, input_root: str, dest: str, mixed: str = "folder",
         reviewed: dict[str, str] | None = None) -> tuple[list[Step], list[tuple[str, str]]]:
    """Steps for every file row, and the rows refused because their path would escape DEST.
    `reviewed` (path -> language a person decided) overrides the model's folder."""
    dest_real = os.path.realpath(dest)
    steps, refused = [], []
    for row in files.itertuples(index=False):
        folder = folder_of(row, mixed, (reviewed or {}).get(row.path))
        relative = str(row.path)
        target = os.path.realpath(os.path.join(dest_real, str(folder), relative))
        if (os.path.isabs(relative) or ".." in relative.split("/") or "/" in str(folder) or str(folder) in ("", ".", "..")
                or not target.startswith(dest_real + os.sep)):
            refused.append((relative, "path would land outside the destination"))
            continue
        steps.append(Step(os.path.join(input_root, relative), target, str(folder)))
    return steps, refused


def sort_archive(manifests_dir: str, dest: str, mode: str = "copy", input_root: str | None = None,
                 dry_run: bool = False, echo=print, mixed: str = "folder") -> SortReport:
    if mode not in MODES:
        raise LangsortError(f"unknown --mode {mode!r}: choose copy, link or move")
    if mixed not in MIXED_CHOICES:
        raise LangsortError(f"unknown --mixed {mixed!r}: choose {' or '.join(MIXED_CHOICES)}")
    files_path = os.path.join(manifests_dir, manifest.FILES_NAME)
    if not os.path.isfile(files_path):
        raise LangsortError(f"no {manifest.FILES_NAME} in {manifests_dir}: run langsort label first")
    root = input_root or input_root_of(manifests_dir)
    files = pd.read_parquet(files_path)
    steps, refused = plan(files, root, dest, mixed, reviews.file_decisions(reviews.load(manifests_dir)))
    report = SortReport(refused=list(refused))
    for step in steps:
        report.by_folder[step.folder] = report.by_folder.get(step.folder, 0) + 1
        if dry_run:
            echo(f"{mode} {step.source} -> {step.target}")
            continue
        outcome = apply(step, mode)
        if outcome == "done":
            report.done += 1
        elif outcome == "already":
            report.already += 1
        else:
            report.refused.append((os.path.relpath(step.source, root), outcome))
    return report


def apply(step: Step, mode: str) -> str:
    """'done', 'already', or why the step was refused; never overwrites, never loses."""
    source_exists = os.path.lexists(step.source)
    if os.path.lexists(step.target):
        if not source_exists and mode == "move":
            return "already"  # an earlier move finished
        if source_exists and _same_file(step.source, step.target):
            if mode == "move":
                os.remove(step.source)  # the copy landed before a kill: finish the move
            return "already"
        return "target exists with other content: not overwritten"
    if not source_exists:
        return "source file is missing"
    os.makedirs(os.path.dirname(step.target), exist_ok=True)
    if mode == "link":
        try:
            os.link(step.source, step.target)
        except OSError:
            os.symlink(os.path.abspath(step.source), step.target)
        return "done"
    if mode == "move":
        try:
            os.rename(step.source, step.target)  # atomic on one filesystem (checked above: no overwrite)
            return "done"
        except OSError:
            pass  # another filesystem: copy, then remove the source
    tmp = os.path.join(os.path.dirname(step.target), f".{os.path.basename(step.target)}.{uuid.uuid4().hex}.part")
    try:
        shutil.copy2(step.source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, step.target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if mode == "move":
        os.remove(step.source)
    return "done"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False
