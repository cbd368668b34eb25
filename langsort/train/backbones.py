"""The three backbones of the method and the model around them.

The model takes the stored uint8 grid (mel bands x time columns) as float32 and makes the
image itself: resize to image_size x image_size, three identical channels, then the
backbone's own `preprocess_input`. Building the image inside the model means the exported
ONNX file needs nothing but grids, and training and labelling cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from langsort.errors import LangsortError
from langsort.model import MAX_WIDTH, MIN_WIDTH


@dataclass(frozen=True)
class Backbone:
    name: str
    module: str  # tf_keras.applications submodule
    constructor: str


BACKBONES = {
    "mobilenet_v2": Backbone("mobilenet_v2", "mobilenet_v2", "MobileNetV2"),
    "resnet50": Backbone("resnet50", "resnet", "ResNet50"),
    "resnet152": Backbone("resnet152", "resnet", "ResNet152"),
}


class WeightsError(LangsortError):
    """Initial weights that cannot be had; the message says what to do instead."""


def check_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise LangsortError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def check_width(name: str, width: float) -> float:
    """MobileNetV2's width multiplier (alpha: channels per layer); the ResNets have none."""
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise LangsortError(f"width must be a multiplier between {MIN_WIDTH} and {MAX_WIDTH:g}, got {width}")
    if width != 1.0 and name != "mobilenet_v2":
        raise LangsortError(f"--width applies to mobilenet_v2 only, not {name}")
    return width


def check_weights(weights: str) -> str:
    """'auto', 'imagenet', 'none' or an existing file path (validated before any worker starts)."""
    if weights in ("auto", "imagenet", "none"):
        return weights
    if not os.path.isfile(weights):
        raise WeightsError(f"weights file not found: {weights} (use --weights auto, imagenet, none, or a local .h5 file)")
    return os.path.abspath(weights)


def auto_weights(name: str, image_size: int) -> str:
    """'imagenet' when Keras can load them for this backbone and size (its cache, or a
    download), else 'none': air-gapped machines train from scratch without being told to."""
    try:
        make_backbone(name, image_size, "imagenet")
    except WeightsError:
        return "none"
    return "imagenet"


def _application(backbone: Backbone):
    from langsort.train import load_tensorflow

    load_tensorflow()
    import tf_keras

    module = getattr(tf_keras.applications, backbone.module)
    return module, getattr(module, backbone.constructor)


def make_backbone(name: str, image_size: int, weights: str, width: float = 1.0):
    """The headless backbone; 'imagenet' downloads through Keras and fails clearly offline."""
    backbone = check_backbone(name)
    _, constructor = _application(backbone)
    keras_weights = None if weights == "none" else weights
    shape = dict(include_top=False, weights=keras_weights, input_shape=(image_size, image_size, 3))
    try:
        return constructor(**shape, alpha=width) if check_width(name, width) != 1.0 else constructor(**shape)
    except Exception as exc:  # Keras raises bare Exceptions for failed downloads
        if weights != "imagenet":
            raise WeightsError(f"cannot load weights from {weights}: {' '.join(str(exc).split())[:200]}") from None
        raise WeightsError(
            "ImageNet weights could not be downloaded (no internet?): train from scratch with "
            "--weights none, or give a local weights file with --weights PATH"
        ) from None


def preprocess_layer(name: str):
    """The backbone's own preprocess_input as a layer (mobilenet: [-1, 1]; resnet: caffe)."""
    import tf_keras

    module, _ = _application(check_backbone(name))
    return tf_keras.layers.Lambda(module.preprocess_input, name="preprocess_input")


def build_model(
    name: str, n_labels: int, grid_shape: tuple[int, int], image_size: int = 224, weights: str = "none",
    width: float = 1.0, dropout: float = 0.2, bn_momentum: float = 0.9,
):
    """grid [batch, n_mels, frames] float32 in 0..255 -> class probabilities [batch, n_labels].

    From scratch, BatchNormalization momentum drops from Keras' 0.999 to `bn_momentum`: with
    a few hundred steps the 0.999 moving averages barely move and inference-mode
    predictions collapse to one class. With pretrained weights the backbone runs in
    inference mode (its ImageNet statistics are kept), as Keras' transfer-learning guide does.
    """
    import tf_keras
    from tf_keras import layers

    base = make_backbone(name, image_size, weights, width)
    pretrained = weights != "none"
    if not pretrained:
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = bn_momentum

    grid = layers.Input(shape=grid_shape, dtype="float32", name="grid")
    x = layers.Reshape((*grid_shape, 1))(grid)
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", name="to_image")(x)
    x = layers.Concatenate(name="rgb")([x, x, x])
    x = preprocess_layer(name)(x)
    x = base(x, training=False) if pretrained else base(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    probabilities = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    model = tf_keras.Model(grid, probabilities, name=f"langsort_{name}")
    model.backbone = base
    return model


def with_columns(model):
    """The model with a second output: class probabilities per time column of the
    backbone's last feature map (averaged over frequency), through the same classifier head
    (shared weights). Global average pooling and the head are linear up to the softmax, so
    the columns' logits average to the clip's. Training fits this output on spliced clips
    (langsort.train.data.splice) so each column answers for its own stretch of the clip;
    export keeps it, and the language timeline reads it (langsort.timeline)."""
    import tensorflow as tf
    import tf_keras

    if hasattr(model, "with_columns"):  # an average of models (`averaged`) brings its own
        return model.with_columns
    # the backbone is a nested model: its last node is the call inside this model
    feature_map = model.backbone.get_output_at(-1)  # [batch, mel rows, time columns, channels]
    head = model.get_layer("probabilities")
    n_columns, channels, n_labels = feature_map.shape[2], feature_map.shape[3], head.units
    # the head sees columns as rows of a batch: a Dense on 3-D input did not convert to ONNX
    columns = tf_keras.layers.Lambda(lambda t: tf.reshape(tf.reduce_mean(t, axis=1), [-1, channels]),
                                     name="columns")(feature_map)
    column_probabilities = tf_keras.layers.Lambda(lambda t: tf.reshape(t, [-1, n_columns, n_labels]),
                                                  name="column_probabilities")(head(columns))
    return tf_keras.Model(model.input, [model.output, column_probabilities], name=model.name)


def averaged(models):
    """One model whose probabilities are the mean of the given models' (the same architecture,
    trained apart): self-training's final model averages its last students, since which unseen
    voices one student gets right is its draw (bench/timeline.py). Its `with_columns` is the
    same average with the column output as well, each member's backbone computed once."""
    import tf_keras
    from tf_keras import layers

    # each member gets its column output before it is called here: with_columns reads the backbone's last call
    members = [tf_keras.Model(m.input, with_columns(m).outputs, name=f"member_{k}") for k, m in enumerate(models)]
    grid = layers.Input(shape=models[0].input_shape[1:], dtype="float32", name="grid")
    outputs = [member(grid) for member in members]
    probabilities = layers.Average(name="probabilities")([clip for clip, _ in outputs])
    columns = layers.Average(name="column_probabilities")([column for _, column in outputs])
    model = tf_keras.Model(grid, probabilities, name=f"{models[0].name}_mean_of_{len(models)}")
    model.with_columns = tf_keras.Model(grid, [probabilities, columns], name=model.name)
    return model
