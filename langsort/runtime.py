"""Connecting to Ray: an embedded local instance by default, a cluster when an address is
given (`--address` or RAY_ADDRESS), exactly as `ray job submit` expects."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator


@contextlib.contextmanager
def stderr_hidden() -> Iterator[None]:
    """Whatever native code writes to stderr (fd 2) goes nowhere for a while: decoders' notes
    (libmpg123's resync lines on a damaged mp3) while a worker reads files, TensorFlow's
    start-up lines while it loads. They would land between progress lines, and every
    problem with a file is reported in its row anyway."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to `address`, or start an embedded instance.

    Quiet by design, so langsort's own progress and end line are what a person reads:
    token authentication is on without Ray's note that it is, and an embedded instance
    keeps its workers' output (Ray Data's and Ray Train's notes, decoder messages) in Ray's
    log files: label and prepare report every file's problem as a row, training sends its
    epoch lines to the driver itself (langsort.train.loop), and errors come back as
    exceptions. On a cluster, worker logs reach the job's log as Ray's default. One C++
    line of the driver still shows on Ray runs of label: that Ray Data's actor pool keeps
    its constructor arguments in the object store (ray-project/ray#53727). Only turning off
    actor restarts or RAY_BACKEND_LOG_LEVEL=fatal (which prints a note of its own) would
    hide it, so it stays; a small label job starts no Ray.
    """
    import ray
    import ray.data

    if ray.is_initialized():
        return
    # langsort draws its own progress; Ray Data's bars, and its note that they are off, would drown it
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    # a small job has fewer blocks than actors: Ray Data says so on every such run
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(logging_level=logging.WARNING, configure_logging=True)
    if address:
        ray.init(address=address, **kwargs)
    else:  # the dashboard stays on: it serves the state API Ray Train polls
        # token authentication stays Ray's default; only the note that it is on goes
        logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
            lambda record: "Token authentication is enabled" not in record.getMessage())
        ray.init(num_cpus=num_cpus, log_to_driver=False, **kwargs)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
