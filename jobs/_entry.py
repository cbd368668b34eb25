"""Shared by the job scripts: run a langsort command in the job's driver process."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(command: str) -> None:
    """`python jobs/<stage>.py ARGS` == `langsort <stage> ARGS`, on the cluster of RAY_ADDRESS."""
    from langsort.cli import app

    app([command, *sys.argv[1:]], prog_name=f"jobs/{command}.py")
