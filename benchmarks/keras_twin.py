"""Keras twins of tinycnn layers and models, holding the same weights.

Layouts differ, values do not:
    tinycnn (NCHW)                    Keras on CPU (NHWC)
    image x      (N, C, H, W)         (N, H, W, C)
    conv weight  (O, C, KH, KW)       kernel (KH, KW, C, O)
    dense weight (out, in)            kernel (in, out)
    Flatten of (C, H, W): index c*H*W + h*W + w     Keras: (h*W + w)*C + c
so the dense layer right after Flatten gets its input rows reordered as well.
Batch norm keeps (gamma, beta, mean, var); Keras' momentum is 1 - PyTorch's.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy  # noqa: E402
import tensorflow as tf  # noqa: E402

from tinycnn import Tensor, nn, no_grad  # noqa: E402

tf.get_logger().setLevel("ERROR")   # one tf.function per benchmarked layer is intended, not "retracing"
from tinycnn.functional._pairs import pair  # noqa: E402


def to_nhwc(x: numpy.ndarray) -> numpy.ndarray:
    """(N, C, H, W) -> (N, H, W, C); 2-D arrays unchanged."""
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def to_nchw(x: numpy.ndarray) -> numpy.ndarray:
    """(N, H, W, C) -> (N, C, H, W); 2-D arrays unchanged."""
    return numpy.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


# --- one layer ------------------------------------------------------------------
def keras_layer_like(module: nn.Module) -> keras.layers.Layer:
    """An unbuilt Keras layer that computes what ``module`` computes."""
    if isinstance(module, nn.Conv2d):
        out_channels, _, kh, kw = module.weight.shape
        return keras.layers.Conv2D(out_channels, (kh, kw), strides=pair(module.stride),
                                   padding=_keras_padding(module.padding, module.stride, (kh, kw)),
                                   use_bias=module.bias is not None)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return keras.layers.BatchNormalization(momentum=1 - module.momentum, epsilon=module.eps)
    if isinstance(module, nn.MaxPool2d):
        if pair(module.padding) != (0, 0):
            raise ValueError("Keras max-pooling has no explicit padding")
        stride = module.kernel_size if module.stride is None else module.stride
        return keras.layers.MaxPooling2D(pair(module.kernel_size), pair(stride), padding="valid")
    if isinstance(module, nn.Linear):
        return keras.layers.Dense(module.weight.shape[0], use_bias=module.bias is not None)
    if isinstance(module, nn.ReLU):
        return keras.layers.ReLU()
    if isinstance(module, nn.Dropout):
        return keras.layers.Dropout(module.p)
    if isinstance(module, nn.Flatten):
        return keras.layers.Flatten()
    raise TypeError(f"no Keras twin for {type(module).__name__}")


def _keras_padding(padding, stride, kernel) -> str:
    """tinycnn's padding as Keras' 'same' (stride 1, odd kernel, pad = k // 2) or 'valid'."""
    if padding == "same" or (pair(stride) == (1, 1) and pair(padding) == (kernel[0] // 2, kernel[1] // 2)):
        return "same"
    if pair(padding) == (0, 0):
        return "valid"
    raise ValueError(f"padding {padding!r} has no Keras equivalent")


def keras_weights(module: nn.Module, image_shape: tuple | None = None) -> list[numpy.ndarray]:
    """``module``'s parameters (and batch-norm statistics) in Keras' order and layout.

    ``image_shape`` (C, H, W): the image a Linear's input was flattened from,
    whose features Keras orders as (H, W, C).
    """
    state = module.state_dict()
    if isinstance(module, nn.Conv2d):
        weights = [state["weight"].transpose(2, 3, 1, 0)]                 # (KH, KW, C, O)
    elif isinstance(module, nn.Linear):
        weight = state["weight"]                                          # (out, in)
        if image_shape is not None:
            weight = weight.reshape(-1, *image_shape).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        weights = [weight.T]                                              # (in, out)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return [state["weight"], state["bias"], state["running_mean"], state["running_var"]]
    else:
        return []
    return weights + ([state["bias"]] if "bias" in state else [])


def tinycnn_layout(module: nn.Module, keras_arrays: list) -> list[numpy.ndarray]:
    """Keras parameter arrays (or their gradients) in tinycnn's layout, ``parameters()`` order."""
    arrays = [numpy.asarray(a) for a in keras_arrays]
    if isinstance(module, nn.Conv2d):
        arrays[0] = arrays[0].transpose(3, 2, 0, 1)                      # (O, C, KH, KW)
    elif isinstance(module, nn.Linear):
        arrays[0] = arrays[0].T                                           # (out, in)
    return arrays


def keras_twin_layer(module: nn.Module, input_shape: tuple) -> keras.layers.Layer:
    """A built Keras layer with ``module``'s weights, for NCHW ``input_shape``."""
    layer = keras_layer_like(module)
    nhwc_shape = input_shape if len(input_shape) == 2 else (input_shape[0], *input_shape[2:], input_shape[1])
    layer.build(nhwc_shape)
    weights = keras_weights(module)
    if weights:
        layer.set_weights(weights)
    return layer


def keras_forward(layer: keras.layers.Layer, x: numpy.ndarray):
    """A callable: one compiled (tf.function) training-mode forward call on NHWC ``x``."""
    x_tf = tf.constant(to_nhwc(x))
    call = tf.function(lambda inputs: layer(inputs, training=True))
    return lambda: call(x_tf)


def keras_forward_backward(layer: keras.layers.Layer, x: numpy.ndarray, dy: numpy.ndarray):
    """A callable: compiled forward and backward of ``dy``; returns [y, dx, d(weights) ...]
    (Keras layouts, ``layer.trainable_weights`` order)."""
    x_tf, dy_tf = tf.constant(to_nhwc(x)), tf.constant(to_nhwc(dy))

    @tf.function
    def forward_backward(inputs, dout):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs, training=True)
        grads = tape.gradient(y, [inputs] + layer.trainable_weights, output_gradients=dout)
        return [y] + grads
    return lambda: forward_backward(x_tf, dy_tf)


# --- a whole model ----------------------------------------------------------------
def keras_model_like(model: nn.Module, image_shape: tuple, softmax: bool = True) -> keras.Sequential:
    """A Keras Sequential with the layers and weights of ``model``'s leaf modules, in order.

    ``image_shape`` (C, H, W) of one input. ``softmax`` appends the softmax that
    Keras models put on their last layer (tinycnn models return logits).
    """
    leaves = [module for module in model.modules() if not module._modules]
    layers = [keras_layer_like(module) for module in leaves]
    if softmax:
        layers.append(keras.layers.Softmax())
    c, h, w = image_shape
    keras_model = keras.Sequential([keras.Input((h, w, c)), *layers])
    for module, layer, flattened_from in zip(leaves, layers, _flattened_shapes(leaves, image_shape)):
        weights = keras_weights(module, flattened_from)
        if weights:
            layer.set_weights(weights)
    return keras_model


def _flattened_shapes(leaves: list[nn.Module], image_shape: tuple) -> list[tuple | None]:
    """For each leaf: the (C, H, W) image its input was flattened from, if it is the
    first Linear after a Flatten; else None. Found by running the leaves on one image."""
    training = [module.training for module in leaves]
    for module in leaves:
        module.eval()
    shapes, flattened, x = [], None, Tensor(numpy.zeros((1, *image_shape), numpy.float32))
    with no_grad():
        for module in leaves:
            shapes.append(flattened if isinstance(module, nn.Linear) else None)
            if isinstance(module, nn.Linear):
                flattened = None
            if isinstance(module, nn.Flatten):
                flattened = x.shape[1:]
            x = module(x)
    for module, mode in zip(leaves, training):
        module.train(mode)
    return shapes


def keras_train_step(keras_model: keras.Model, x: numpy.ndarray, labels: numpy.ndarray):
    """A callable: one compiled Keras training step (``model.train_on_batch``) on NCHW ``x``,
    with Adam 1e-3 and sparse categorical cross-entropy on the softmax output."""
    keras_model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8),
                        loss="sparse_categorical_crossentropy")
    x_nhwc = to_nhwc(x)
    return lambda: keras_model.train_on_batch(x_nhwc, labels)
