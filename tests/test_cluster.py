"""A real two-node Ray cluster on loopback: `ray start --head`, a second node joined with
`ray start --address`, the label job submitted with `ray job submit`, manifests checked.

The cluster gets its own short temp dir and only its own processes are stopped, so the
test session's local Ray (and anything else on the machine) is left alone."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import psutil
import pytest

from langsort.export import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    """Fresh ports for one node's agents: the defaults (52365, ...) may be taken by another
    Ray on the machine (this test session's own), and a node whose agent cannot bind
    never accepts jobs ("No available agent")."""
    names = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")
    return [part for name in names for part in (name, str(free_port()))]


def stop_cluster(temp_dir: str) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in proc.info["cmdline"] or []):
                proc.kill()
        except psutil.Error:
            pass


@pytest.fixture
def cluster():
    temp_dir = tempfile.mkdtemp(prefix="lsc", dir="/tmp")
    port, dashboard = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    ray = os.path.join(BIN, "ray")
    common = ["--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir, "--num-cpus", "1",
              "--disable-usage-stats"]
    try:
        subprocess.run([ray, "start", "--head", "--port", str(port), "--dashboard-host", "127.0.0.1",
                        "--dashboard-port", str(dashboard), *common, *node_ports()], check=True, env=env,
                       capture_output=True)
        env["RAY_AUTH_MODE"] = "token"
        subprocess.run([ray, "start", "--address", f"127.0.0.1:{port}", *common, *node_ports()], check=True,
                       env=env, capture_output=True)
        yield dict(env=env, gcs=f"127.0.0.1:{port}", dashboard=f"http://127.0.0.1:{dashboard}")
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_label_job_submitted_to_a_two_node_cluster(cluster, trained_small, small_corpus, tmp_path):
    model = export(trained_small.model_dir, str(tmp_path / "model.onnx")).path
    env = cluster["env"]
    status = subprocess.run([os.path.join(BIN, "ray"), "status", "--address", cluster["gcs"]], env=env,
                            capture_output=True, text=True, timeout=60)
    deadline = time.time() + 60
    while "2 node" not in status.stdout and time.time() < deadline:  # wait for the second node
        time.sleep(2)
        status = subprocess.run([os.path.join(BIN, "ray"), "status", "--address", cluster["gcs"]], env=env,
                                capture_output=True, text=True, timeout=60)
    out = tmp_path / "manifests"
    submit = [os.path.join(BIN, "ray"), "job", "submit", "--address", cluster["dashboard"], "--",
              sys.executable, os.path.join(ROOT, "jobs", "label.py"), str(small_corpus), "--model", model,
              "--out", str(out), "--quiet"]
    deadline = time.time() + 120
    while True:  # the head's job agent comes up a little after `ray start` returns
        job = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600)
        if "No available agent" not in job.stdout + job.stderr or time.time() > deadline:
            break
        time.sleep(3)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in job.stdout
    files = pd.read_parquet(out / "files.parquet")
    assert sorted(files.path) == sorted(str(p.relative_to(small_corpus)) for p in small_corpus.rglob("*") if p.is_file())
    assert (files.n_clips > 0).all() and files.status.isin(["ok", "unknown"]).all()
    assert len(pd.read_parquet(out / "clips.parquet")) == files.n_clips.sum()
