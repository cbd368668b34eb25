"""The cluster side must agree with the code: manifests parse, name the image the
Dockerfile builds, and run entrypoints that exist in jobs/ with options the CLI knows."""

import os
import re
import shlex

import pytest
import typer.main
import yaml

from langsort.cli import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFESTS = ["deploy/k8s/raycluster.yaml", "deploy/k8s/rayjob-label.yaml"]


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def containers(cluster_spec):
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifests_parse_with_the_fields_kuberay_requires(path):
    doc = load(path)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] in ("RayCluster", "RayJob")
    spec = doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]
    import ray

    assert spec["rayVersion"] == ray.__version__
    dockerfile = open(os.path.join(ROOT, "deploy/Dockerfile")).read()
    tag = re.search(r"-t (\S+)", dockerfile).group(1)
    assert {c["image"] for c in containers(spec)} == {tag}


def test_rayjob_entrypoint_is_a_job_script_with_valid_cli_options():
    entrypoint = shlex.split(load("deploy/k8s/rayjob-label.yaml")["spec"]["entrypoint"])
    assert entrypoint[0] == "python"
    script = entrypoint[1].replace("/opt/langsort/", "")
    assert os.path.isfile(os.path.join(ROOT, script))
    command = os.path.splitext(os.path.basename(script))[0]
    cli = typer.main.get_command(app)
    assert command in cli.commands
    known = {opt for param in cli.commands[command].params for opt in param.opts}
    assert {arg for arg in entrypoint[2:] if arg.startswith("--")} <= known
