"""Shared fixtures: one local Ray instance for the session and synthesized speech (espeak-ng),
made on the fly so no audio is committed."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Ray Train's controller polls its workers every 2 s, so each training waited seconds for its
# workers to start and to finish; the suite trains a dozen tiny models
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from langsort.runtime import init_ray

    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def s3(monkeypatch):
    """A local S3-compatible server (moto) on loopback with a bucket `archive`, and the AWS
    variables that point langsort.storage at it; yields a boto3 client."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = dict(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="archive")
    yield client
    server.stop()


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory):
    """Speech samples at espeak's rate, spoken once per session: {(language, seed): samples}."""
    from langsort import synth

    cache = {}

    def get(language: str, seconds: float, seed: int = 0) -> np.ndarray:
        key = (language, seconds, seed)
        if key not in cache:
            rng = np.random.default_rng(seed)
            cache[key] = synth.recording(language, seconds, rng)
        return cache[key]

    return get


SMALL_LABELS = ["maya", "nahuatl", "spanish"]  # small_corpus's languages, as models list them


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """LABELLED/<language>/... in wav, flac, mp3 and ogg at 8-48 kHz, mono and stereo, in three
    languages: every test that trains, exports or labels on it checks that nothing assumes two."""
    from langsort import synth

    root = tmp_path_factory.mktemp("labelled")
    synth.labelled_corpus(str(root), files_per_language=6, seconds=(12, 20), seed=7, languages=tuple(synth.VOICES))
    return root


@pytest.fixture(scope="session")
def prepared_small(ray_local, small_corpus, tmp_path_factory):
    """small_corpus prepared (one perturbed copy per recording), shared by training tests."""
    from langsort.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("prepared") / "small"
    prepare(str(small_corpus), str(out), PrepareConfig(augment=1), progress=False)
    return out


@pytest.fixture(scope="session")
def trained_small(prepared_small, tmp_path_factory):
    """A real 2-worker Ray Train run on the tiny corpus (small images, two epochs)."""
    from langsort.train.loop import TrainOptions, fit

    model_dir = tmp_path_factory.mktemp("model") / "m"
    # two epochs at 48 px exercise the machinery, not the learning: keep the model even at chance
    # a thin MobileNetV2 (width 0.5): export and labelling must rebuild it from model.json
    options = TrainOptions(weights="none", epochs=2, image_size=48, width=0.5, workers=2, batch_size=8,
                           require_learning=False)
    return fit(str(prepared_small), str(model_dir), options, progress=False)


def write_tiny_model(path, labels=("maya", "spanish"), slope: float = 0.02) -> str:
    """A real langsort ONNX model in milliseconds, without TensorFlow: the mean of the grid
    through a dense layer (weights from -slope to slope) and a softmax. For tests of the label
    plumbing, not of accuracy."""
    import dataclasses
    import json

    import onnx
    from onnx import TensorProto, helper

    from langsort.model import METADATA_KEY
    from langsort.features import SpectrogramParams
    from langsort.segment import SegmentParams

    spec = SpectrogramParams()
    n = len(labels)
    weights = np.linspace(-slope, slope, n, dtype=np.float32).reshape(1, n)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["grid"], ["mean"], axes=[1, 2], keepdims=0),
         helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
         helper.make_node("MatMul", ["column", "weights"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
        "tiny", [helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["batch", *spec.grid_shape])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
         helper.make_tensor("weights", TensorProto.FLOAT, [1, n], weights.ravel().tolist())])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    meta = dict(langsort_version="test", backbone="tiny", labels=list(labels), image_size=spec.frames,
                grid_shape=list(spec.grid_shape), spectrogram=spec.to_dict(),
                segment=dataclasses.asdict(SegmentParams()), initial_weights="none", trained_at="never", metrics={})
    helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model.onnx")
