"""One `label` run at a time per MANIFESTS folder.

Two runs into one MANIFESTS would each rebuild the manifests from their own input, and the
last to finish would silently win. MANIFESTS/.langsort/lock holds an advisory lock (flock)
for the whole run, with the holder's pid and host written in it for the message the second
run prints. The kernel releases a flock when its process dies, however it dies, so a lock
left by a killed run is simply taken by the next one. Object stores have no such lock:
there, runs into one MANIFESTS must not overlap.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from langsort import storage
from langsort.errors import LangsortError

LOCK_NAME = "lock"


class ManifestsBusy(LangsortError):
    """Another label run is writing into the same MANIFESTS."""


class ManifestLock:
    """Held for a `with` block; nested blocks on the same MANIFESTS in one process share it
    (the CLI takes it before Ray starts, and label() takes it again for library callers)."""

    _held: dict[str, list] = {}  # lock path -> [fd, depth], this process's locks

    def __init__(self, manifests_dir: str, state_dir: str):
        self.manifests_dir = manifests_dir
        self.path = storage.join(storage.absolute(manifests_dir), state_dir, LOCK_NAME)

    def __enter__(self) -> "ManifestLock":
        if storage.is_remote(self.path):
            return self
        if self.path in self._held:
            self._held[self.path][1] += 1
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ManifestsBusy(f"another langsort label ({holder}) is writing into {self.manifests_dir}: "
                                "wait for it to finish, or give another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(), since=time.time())).encode())
        self._held[self.path] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        entry = self._held.get(self.path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[self.path]
            os.ftruncate(entry[0], 0)  # the file stays: removing it would race with a run opening it
            os.close(entry[0])  # releases the flock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not written its pid yet"
