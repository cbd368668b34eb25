"""Connecting to Ray: an embedded local instance by default, a cluster when an address is
given (`--address` or RAY_ADDRESS), exactly as `ray job submit` expects."""

from __future__ import annotations

import logging
import os
import warnings


def init_ray(address: str | None = None, num_cpus: int | None = None, worker_logs: bool = True) -> None:
    """Connect to `address`, or start an embedded instance.

    Quiet by design, so langsort's own progress and end line are what a person reads:
    token authentication is on without Ray's note that it is, and with `worker_logs=False`
    workers' output (decoder notes such as libmpg123's resync messages) stays in Ray's log
    files: label and prepare report every file's problem as a row. Worker logs are left on
    where they are the output (training epochs, cluster jobs). One C++ line of the driver
    still shows on Ray runs of label: that Ray Data's actor pool keeps its constructor
    arguments in the object store (ray-project/ray#53727). RAY_BACKEND_LOG_LEVEL=fatal hides
    it only to print a note of its own, so it is not set; a small label job starts no Ray.
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
        ray.init(num_cpus=num_cpus, log_to_driver=worker_logs, **kwargs)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
