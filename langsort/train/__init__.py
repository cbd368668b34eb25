"""`langsort train`: fit an ImageNet-family CNN on spectrogram grids with Ray Train.

Training uses tf-keras (Keras 2): Keras 3 lacks MultiWorkerMirroredStrategy support, which
Ray's TensorflowTrainer relies on. The variable below must be set before TensorFlow loads.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hides the CUDA probe noise on CPU machines
