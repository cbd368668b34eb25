"""Where files live: local paths or object-store URIs (s3://, gs://) through pyarrow's
filesystems, so cluster workers read the archive where it is and write manifests there.

S3 settings come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL for S3-compatible stores such as MinIO).
Object stores have no rename: a PUT of a whole object is atomic, which is what the
manifest writers rely on instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import uuid

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")
BUFFER_WHOLE_BYTES = 256 * 2**20  # remote audio smaller than this is read in one request


def is_remote(path: str) -> bool:
    return str(path).startswith(REMOTE_SCHEMES)


def _fs(uri: str):
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(uri)


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
    return os.path.join(base, *parts)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    import pyarrow.fs as pafs

    fs, inner = _fs(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(path)
    import pyarrow.fs as pafs

    fs, inner = _fs(path)
    if fs.get_file_info(inner).type == pafs.FileType.Directory:
        return True
    return bool(fs.get_file_info(pafs.FileSelector(inner, recursive=False, allow_not_found=True)))


def list_files(root: str) -> list[str]:
    """Relative POSIX paths of every object under a remote root."""
    import pyarrow.fs as pafs

    fs, inner = _fs(root)
    inner = inner.rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return sorted(i.path[len(inner) + 1 :] for i in infos if i.type == pafs.FileType.File)


def size(path: str) -> int:
    if not is_remote(path):
        return os.path.getsize(path)
    fs, inner = _fs(path)
    return fs.get_file_info(inner).size


def not_regular(mode: int) -> str | None:
    """What a local file is when it is not a regular file (links already resolved), else None:
    reading a FIFO blocks forever and /dev/zero never ends, so only regular files are read."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return f"not a regular file: {kind}"
    return None if stat.S_ISREG(mode) else "not a regular file"


def open_read(path: str):
    """A seekable binary file object; a local path must be a regular file (OSError otherwise,
    found without blocking: a FIFO is opened non-blocking and refused)."""
    if not is_remote(path):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            kind = not_regular(os.fstat(fd).st_mode)
            if kind:
                raise OSError(errno.EINVAL, kind)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
    fs, inner = _fs(path)
    handle = fs.open_input_file(inner)
    if handle.size() <= BUFFER_WHOLE_BYTES:
        with handle:
            return io.BytesIO(handle.read())
    return handle


def stamp(path: str) -> tuple | None:
    """What changes when a file is rewritten, replaced or deleted (size, mtime, and the
    inode locally); None when it is gone. Cheaper than hashing again."""
    try:
        if not is_remote(path):
            st = os.stat(path)
            return st.st_size, st.st_mtime_ns, st.st_ino
        import pyarrow.fs as pafs

        fs, inner = _fs(path)
        info = fs.get_file_info(inner)
        return None if info.type == pafs.FileType.NotFound else (info.size, info.mtime_ns)
    except OSError:
        return None


def sha256_of(path: str) -> str:
    """Content identity of a file (hashlib reads it into one reused buffer)."""
    with open_read(path) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Local: temporary file, fsync, rename. Remote: one PUT (atomic on object stores)."""
    if is_remote(path):
        fs, inner = _fs(path)
        with fs.open_output_stream(inner) as f:
            f.write(data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove(path: str) -> None:
    """Delete a file, local or remote; one already gone is fine."""
    if is_remote(path):
        fs, inner = _fs(path)
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(inner)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")  # write_bytes_atomic's and AtomicParquetWriter's


def remove_temporaries(directory: str) -> int:
    """Remove what killed atomic writes left directly in a local `directory`; only safe
    while no other writer uses it (label holds the manifests lock). Returns how many."""
    if is_remote(directory) or not os.path.isdir(directory):
        return 0  # object stores: a PUT leaves nothing behind
    names = [n for n in os.listdir(directory) if TEMPORARY_NAME.fullmatch(n)]
    for name in names:
        remove(os.path.join(directory, name))
    return len(names)


def glob_names(directory: str, prefix: str, suffix: str) -> list[str]:
    """Full paths of files directly in `directory` named prefix*suffix, sorted."""
    if is_remote(directory):
        names = [n for n in list_files(directory) if "/" not in n]
    else:
        names = os.listdir(directory) if os.path.isdir(directory) else []
    return sorted(join(directory, n) for n in names if n.startswith(prefix) and n.endswith(suffix))


CREDENTIAL_PREFIXES = ("AWS_", "GOOGLE_", "GCS_")


def absolute(path: str) -> str:
    """Local paths made absolute (workers may run elsewhere); URLs as they are."""
    return path if is_remote(path) else os.path.abspath(path)


def ray_options(*paths: str) -> dict:
    """Ray task options that hand the driver's object-store settings (AWS_*, GOOGLE_*) to
    the workers when any path is remote; workers started earlier do not have them."""
    if not any(is_remote(str(p)) for p in paths):
        return {}
    env = {k: v for k, v in os.environ.items() if k.startswith(CREDENTIAL_PREFIXES)}
    return {"runtime_env": {"env_vars": env}} if env else {}
