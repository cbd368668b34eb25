"""The model registry: `models/<name>/model.onnx` (+ MODEL_CARD.md), one folder a model.

The folder is `./models` or $LANGSORT_MODELS. `label --model NAME` resolves a name here
when NAME is not a file; `langsort models list` shows every model with its card."""

from __future__ import annotations

import os
import shutil

from langsort import storage
from langsort.model import MODEL_FILE, ModelInfo, model_card, read_model_info

CARD_FILE = "MODEL_CARD.md"


def registry_dir() -> str:
    return os.environ.get("LANGSORT_MODELS", "models")


def resolve(name_or_path: str) -> str:
    """A path or URI as given, or the registered model of that name."""
    if storage.is_remote(name_or_path) or os.path.exists(name_or_path):
        return name_or_path
    candidate = os.path.join(registry_dir(), name_or_path, MODEL_FILE)
    return candidate if os.path.isfile(candidate) else name_or_path


def register(onnx_path: str, name: str) -> str:
    """Copy an exported model into the registry under `name` with its card."""
    info = read_model_info(onnx_path)
    folder = os.path.join(registry_dir(), name)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, MODEL_FILE)
    shutil.copyfile(onnx_path, target + ".tmp")
    os.replace(target + ".tmp", target)
    with open(os.path.join(folder, CARD_FILE), "w") as f:
        f.write(model_card(info.meta))
    return target


def list_models() -> list[tuple[str, ModelInfo]]:
    root = registry_dir()
    if not os.path.isdir(root):
        return []
    found = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, MODEL_FILE)
        if os.path.isfile(path):
            found.append((name, read_model_info(path)))
    return found
