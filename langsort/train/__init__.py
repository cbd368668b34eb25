"""`langsort train`: fit an ImageNet-family CNN on spectrogram grids with Ray Train.

Training uses tf-keras (Keras 2): Keras 3 lacks MultiWorkerMirroredStrategy support, which
Ray's TensorflowTrainer relies on. The variable below must be set before TensorFlow loads.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hides the CUDA probe noise on CPU machines


def load_tensorflow() -> None:
    """Import TensorFlow once, quietly: TF 2.21 writes absl's start-up lines (oneDNN, the
    CUDA probe) straight to stderr whatever TF_CPP_MIN_LOG_LEVEL says, and they would sit
    between langsort's progress lines. An import error still raises, with its message."""
    if "tensorflow" not in sys.modules:
        from langsort.runtime import stderr_hidden

        with stderr_hidden():
            import tensorflow  # noqa: F401

# training defaults, here so the CLI and `run` share them without importing the training loop
EPOCHS = 10  # at 224 px: the accuracy bench's targets hold and training takes 15 min on 2 cores
BATCH_SIZE = 16
IMAGE_SIZE = 224  # spectrogram time columns and CNN image side, as the published method
INITIAL_WEIGHTS = "auto"  # ImageNet weights when Keras can load them (cache or download), else from scratch
# `run` from scratch (no ImageNet weights): small images and many short epochs learn more from
# little data in the same time (bench/accuracy.py --scenario little)
SCRATCH_IMAGE_SIZE = 96
SCRATCH_EPOCHS = 40
