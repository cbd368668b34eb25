import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SMALL_LABELS, write_tiny_model

from langsort.export import ExportError, average, export
from langsort.model import ModelFileError, read_model_info


@pytest.fixture(scope="module")
def exported(trained_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export(trained_small.model_dir, str(out), quantize="int8")


def test_export_matches_the_trained_model_and_carries_its_metadata(exported, trained_small):
    assert exported.max_difference <= 1e-4
    info = read_model_info(exported.path)
    assert info.labels == SMALL_LABELS and info.grid_shape == (128, 224)
    assert info.meta.spectrogram.sample_rate == 16000 and info.meta.backbone == "mobilenet_v2"
    assert "clip_accuracy" in info.meta.metrics and info.sha256 == exported.sha256
    props = {p.key for p in onnx.load(exported.path).metadata_props}
    assert {"langsort", "model_card"} <= props
    assert info.meta.column_centres is None  # columns trained on spliced clips answer for equal shares
    columns = ort.InferenceSession(exported.path).get_outputs()[1]
    assert columns.shape[2] == len(SMALL_LABELS)  # [batch, columns, labels]


def test_exported_model_takes_any_batch_size(exported):
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        grids = np.random.default_rng(batch).uniform(0, 255, (batch, 128, 224)).astype(np.float32)
        probs = session.run(None, {"grid": grids})[0]
        assert probs.shape == (batch, len(SMALL_LABELS))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_int8_copy_is_checked_against_float(exported):
    assert exported.quantized_path.endswith(".int8.onnx")
    assert 0.0 <= exported.quantized_agreement <= 1.0
    assert read_model_info(exported.quantized_path).labels == SMALL_LABELS


def test_parity_failure_refuses_the_export(trained_small, tmp_path, monkeypatch):
    import langsort.export as stage

    wrong = lambda serialized, grids: [np.zeros((len(grids), len(SMALL_LABELS)), np.float32)]  # noqa: E731
    monkeypatch.setattr(stage, "_onnx_outputs", wrong)
    with pytest.raises(ExportError, match="differs"):
        export(trained_small.model_dir, str(tmp_path / "bad.onnx"))
    assert not (tmp_path / "bad.onnx").exists()


def test_files_that_are_not_langsort_onnx_models_are_refused(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        read_model_info(str(text))
    bare = tmp_path / "bare.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), bare)
    with pytest.raises(ModelFileError, match="without langsort metadata"):
        read_model_info(str(bare))
    with pytest.raises(ModelFileError, match="not found"):
        read_model_info(str(tmp_path / "missing.onnx"))


def test_registry_registers_lists_and_resolves_by_name(exported, tmp_path, monkeypatch):
    from langsort import registry

    monkeypatch.setenv("LANGSORT_MODELS", str(tmp_path / "models"))
    path = registry.register(exported.path, "es-maya-nah")
    assert (tmp_path / "models" / "es-maya-nah" / "MODEL_CARD.md").read_text().startswith("# langsort model")
    assert [(name, info.labels) for name, info in registry.list_models()] == [("es-maya-nah", SMALL_LABELS)]
    assert registry.resolve("es-maya-nah") == path
    assert registry.resolve("unknown-name") == "unknown-name"


def test_averaged_model_outputs_the_mean_of_its_models(tmp_path):
    """Self-training's first teacher: one graph, the first model's metadata, the mean of the outputs."""
    models = [write_tiny_model(tmp_path / f"m{slope}.onnx", slope=slope) for slope in (0.02, -0.05, 0.01)]
    result = average(models, str(tmp_path / "teachers.onnx"))
    grids = np.random.default_rng(3).uniform(0, 255, (5, *read_model_info(models[0]).grid_shape)).astype(np.float32)

    def outputs(path):
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"grid": grids})[0]

    mean = np.mean([outputs(path) for path in models], axis=0)
    assert np.abs(outputs(models[0]) - outputs(models[1])).max() > 0.1  # the models disagree
    np.testing.assert_allclose(outputs(result.path), mean, atol=1e-6)
    info = read_model_info(result.path)
    assert info.labels == ["maya", "spanish"] and info.sha256 == result.sha256
    assert info.meta.details["averages"] == [read_model_info(path).sha256 for path in models]


def test_models_with_other_labels_are_not_averaged(tmp_path):
    models = [write_tiny_model(tmp_path / "a.onnx"), write_tiny_model(tmp_path / "b.onnx", labels=("maya", "english"))]
    with pytest.raises(ExportError, match="labels or grid differ"):
        average(models, str(tmp_path / "teachers.onnx"))
    assert not (tmp_path / "teachers.onnx").exists()
