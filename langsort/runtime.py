"""Connecting to Ray: an embedded local instance by default, a cluster when an address is
given (`--address` or RAY_ADDRESS), exactly as `ray job submit` expects."""

from __future__ import annotations

import logging
import os


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to `address`, or start an embedded instance."""
    import ray
    import ray.data

    if ray.is_initialized():
        return
    # langsort draws its own progress; Ray Data's per-operator lines would drown it
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(logging_level=logging.WARNING, configure_logging=True)
    if address:
        ray.init(address=address, **kwargs)
    else:  # the dashboard stays on: it serves the state API Ray Train polls
        ray.init(num_cpus=num_cpus, **kwargs)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
