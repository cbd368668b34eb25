"""`langsort sort`: the archive sorted into DEST/<language>/<relative path> from the manifest.

Files that are not `ok` go to DEST/_unknown/ and DEST/_error/; a file a person reviewed
(reviews.parquet) goes where they decided. Safety rules, because this
touches the archive itself: a target that exists is never overwritten (an identical one
counts as done, so a re-run after an interruption finishes the job); a path that would
land outside DEST is refused; copy and cross-device move write a temporary file and
rename it, so a killed run never leaves a half file under a real name, and move removes
the source only after the target is complete. Only regular files inside the input folder
are touched (a link is followed only when it stays inside), files that are not audio at
all stay where they are, and every bad row is refused on its own while the rest is sorted.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass, field

import pandas as pd

from langsort import manifest, reviews
from langsort.audio import is_audio_name
from langsort.corpus import display_path, stored_name
from langsort.errors import LangsortError
from langsort.parts import input_root_of

MODES = ("copy", "link", "move")
UNKNOWN_DIR, ERROR_DIR, MIXED_DIR = "_unknown", "_error", "_mixed"
MIXED_CHOICES = ("folder", "dominant")  # mixed files in DEST/_mixed/, or with their dominant language
PARTIAL_COPY_FORMAT = ".langsort-{}.part"
PARTIAL_COPY = re.compile(r"\.langsort-[0-9a-f]{32}\.part")


class SortError(LangsortError):
    """The sort as asked cannot be done safely (e.g. DEST inside the archive)."""


@dataclass(frozen=True)
class Step:
    path: str  # as the manifest names it
    source: str
    target: str
    folder: str  # language, _unknown or _error
    root: str  # the input folder: sources must stay inside it


@dataclass
class SortReport:
    done: int = 0
    already: int = 0  # identical target existed (an earlier, interrupted run)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    not_audio: list[str] = field(default_factory=list)  # error rows of files that are not audio: left in place
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
    """Steps for every file row, and the rows refused (with why) before anything is touched.
    `reviewed` (path -> language a person decided) overrides the model's folder."""
    dest_real = os.path.realpath(dest)
    steps, refused = [], []
    for row in files.itertuples(index=False):
        relative = row.path if isinstance(row.path, str) else ""
        folder = folder_of(row, mixed, (reviewed or {}).get(relative))
        why = _bad_path(relative) or _bad_folder(folder)
        if why is None:
            on_disk = _on_disk(input_root, relative)
            target = os.path.realpath(os.path.join(dest_real, folder, on_disk))
            if not target.startswith(dest_real + os.sep):
                why = "path would land outside the destination"
        if why:
            refused.append((relative, why))
            continue
        steps.append(Step(relative, os.path.join(input_root, on_disk), target, folder, input_root))
    return steps, refused


def _bad_path(relative: str) -> str | None:
    """Why a manifest path cannot name a file under the input root, or None."""
    if "\0" in relative:
        return "path contains a NUL byte"
    parts = relative.split("/")
    if os.path.isabs(relative) or ".." in parts:
        return "path would land outside the destination"
    if any(part in ("", ".") for part in parts):
        return f"not a file path: {relative!r}"
    return None


def _bad_folder(folder) -> str | None:
    if not (isinstance(folder, str) and folder):
        return "status ok but no language"
    if "/" in folder or "\0" in folder or folder in (".", ".."):
        return f"language {folder!r} cannot be a folder name"
    return None


def _on_disk(root: str, relative: str) -> str:
    """The relative name on disk: a non-UTF-8 name is stored escaped in the manifest."""
    original = stored_name(relative)
    if original != relative and not os.path.lexists(os.path.join(root, relative)):
        return original
    return relative


def input_inside(dest: str, root: str) -> bool:
    """True when DEST is the input folder or inside it (its files would be labelled again)."""
    dest_real, root_real = os.path.realpath(dest), os.path.realpath(root)
    return os.path.commonpath([dest_real, root_real]) == root_real


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
    if input_inside(dest, root):
        raise SortError(f"destination {dest} is inside the labelled folder {root} (or is it): "
                        "choose one outside it, or the next label would count every recording twice")
    if not dry_run:
        remove_partial_copies(dest)
    files = pd.read_parquet(files_path)
    not_audio = (files.status == manifest.STATUS_ERROR) & ~files.path.map(
        lambda p: isinstance(p, str) and is_audio_name(p))
    steps, refused = plan(files[~not_audio], root, dest, mixed, reviews.file_decisions(reviews.load(manifests_dir)))
    report = SortReport(refused=list(refused), not_audio=list(files.path[not_audio]))
    for step in steps:
        report.by_folder[step.folder] = report.by_folder.get(step.folder, 0) + 1
        if dry_run:
            echo(f"{mode} {display_path(step.source)} -> {display_path(step.target)}")
            continue
        try:
            outcome = apply(step, mode)
        except OSError as exc:
            outcome = f"cannot {mode}: {exc.strerror or exc}"
        if outcome == "done":
            report.done += 1
        elif outcome == "already":
            report.already += 1
        else:
            report.refused.append((step.path, outcome))
    return report


def remove_partial_copies(dest: str) -> None:
    """The temporary files of copies a killed run left in DEST (they never carry a real name)."""
    for folder, _, names in os.walk(dest):
        for name in names:
            if PARTIAL_COPY.fullmatch(name):
                os.remove(os.path.join(folder, name))


def apply(step: Step, mode: str) -> str:
    """'done', 'already', or why the step was refused; never overwrites, never loses."""
    source_exists = os.path.lexists(step.source)
    if source_exists and (why := _unsafe_source(step.source, step.root)):
        return why
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
            os.symlink(os.path.realpath(step.source), step.target)
        return "done"
    if mode == "move" and not os.path.islink(step.source):  # a link's file is copied, the link removed
        try:
            os.rename(step.source, step.target)  # atomic on one filesystem (checked above: no overwrite)
            return "done"
        except OSError:
            pass  # another filesystem: copy, then remove the source
    # a short name of its own: the target's name may already be as long as names can be
    tmp = os.path.join(os.path.dirname(step.target), PARTIAL_COPY_FORMAT.format(uuid.uuid4().hex))
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


def _unsafe_source(source: str, root: str) -> str | None:
    """Why a source must not be touched: only regular files inside the input folder are,
    so a link to /etc/passwd, a folder, a device or a pipe never is."""
    real, root_real = os.path.realpath(source), os.path.realpath(root)
    if os.path.commonpath([real, root_real]) != root_real:
        return "a link to outside the input folder: not followed"
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return "broken symbolic link" if os.path.islink(source) else "source file is missing"
    if not stat.S_ISREG(mode):
        return "not a regular file (a folder, device, pipe or socket)"
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False
