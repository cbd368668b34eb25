"""Find every input file of a corpus, and its label when the tree is LABELLED.

LABELLED/<language>/**/<file>: the first folder level is the label. Every file found gets
a row downstream, audio or not (SPEC: files that are not audio are reported, never fatal),
and folders that cannot be listed are reported the same way instead of stopping the walk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from langsort import storage
from langsort.audio import is_audio_name
from langsort.errors import LangsortError


@dataclass(frozen=True)
class InputFile:
    source: str  # what to open: an absolute local path or an object-store URI
    path: str  # POSIX path relative to the input root, as the manifests show it
    label: str | None = None
    error: str | None = None  # set when the walk itself could not reach the file


class CorpusError(LangsortError):
    """The input root itself is unusable (a user error, reported in one line)."""


def display_path(path: str) -> str:
    """A path that Parquet can store: undecodable bytes of a non-UTF-8 name are escaped."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def stored_name(path: str) -> str:
    """The name on disk of a manifest path: `display_path` undone (its escapes are always
    of bytes >= 0x80, which are never valid UTF-8 on their own)."""
    return re.sub(r"\\x([89a-f][0-9a-f])", lambda m: chr(0xDC00 + int(m.group(1), 16)), path)


def discover(root: str, labelled: bool = False) -> list[InputFile]:
    """Every file under `root`, sorted by relative path; symlinked folders are not followed
    (no loops); unreadable folders, broken links and what is not a regular file (FIFOs,
    devices, sockets) become error entries that are never opened."""
    if storage.is_remote(root):
        if not storage.is_dir(root):
            raise CorpusError(f"input folder not found: {root}")
        return [_remote_entry(root, rel, labelled) for rel in storage.list_files(root)]
    if not os.path.exists(root):
        raise CorpusError(f"input folder not found: {root}")
    if not os.path.isdir(root):
        raise CorpusError(f"input is not a folder: {root} (give the folder that holds the audio)")
    root = os.path.abspath(root)
    found: list[InputFile] = []

    def unreadable(exc: OSError) -> None:
        rel = os.path.relpath(exc.filename or root, root)
        found.append(_entry(root, rel, labelled, error=f"cannot list folder: {exc.strerror or exc}"))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            found.append(_entry(root, os.path.relpath(full, root), labelled, error=_not_readable(full)))
    return sorted(found, key=lambda f: f.path)


def _not_readable(full: str) -> str | None:
    """Why a listed name is never opened: a broken link, or not a regular file once links
    are resolved (a FIFO would block the reader, a link to /dev/zero never ends)."""
    try:
        mode = os.stat(full).st_mode
    except OSError as exc:
        return "broken or looping symbolic link" if os.path.islink(full) else f"cannot read: {exc.strerror or exc}"
    return storage.not_regular(mode)


def has_audio(root: str) -> bool:
    """True as soon as one file under `root` has an audio name: a cheap check that an
    input is not empty or mistyped, before any work starts (a missing root is False)."""
    if storage.is_remote(root):
        return storage.is_dir(root) and any(is_audio_name(rel) for rel in storage.list_files(root))
    return any(is_audio_name(name) for _, _, names in os.walk(root) for name in names)


def _entry(root: str, rel: str, labelled: bool, error: str | None = None) -> InputFile:
    parts = rel.split(os.sep)
    label = display_path(parts[0]) if labelled and len(parts) > 1 else None
    return InputFile(source=os.path.join(root, rel), path=display_path("/".join(parts)), label=label, error=error)


def _remote_entry(root: str, rel: str, labelled: bool) -> InputFile:
    parts = rel.split("/")
    label = parts[0] if labelled and len(parts) > 1 else None
    return InputFile(source=storage.join(root, rel), path=rel, label=label)


def labels_of(files: list[InputFile]) -> list[str]:
    return sorted({f.label for f in files if f.label is not None})
