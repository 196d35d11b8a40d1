"""CIFAR-10 networks in Flax linen: ResNet-18 (3x3 stem, no max-pool) and a small ResNet for CPU runs.

Both take ``x`` float ``(N, 32, 32, 3)`` (already normalised) and ``train: bool``; they hold BatchNorm
statistics in the ``batch_stats`` collection (torch's BatchNorm2d: momentum 0.1, eps 1e-5), compute in
``dtype`` (bfloat16 on GPU/TPU, float32 on CPU) and keep float32 parameters. Convolutions use torch's
default-free He-normal init (fan-out), as torchvision's ResNet does.

>>> import jax, jax.numpy as jnp
>>> m = SmallResNet()
>>> v = m.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False)
>>> m.apply(v, jnp.zeros((2, 32, 32, 3)), train=False).shape
(2, 10)
>>> num_params(v["params"]) > 100_000
True
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and ReLU, plus a (1x1 conv + BN when shapes change) shortcut."""

    features: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        conv = partial(nn.Conv, use_bias=False, dtype=self.dtype, kernel_init=_conv_init)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)
        y = conv(self.features, (3, 3), strides=self.stride, padding=1)(x)
        y = nn.relu(norm()(y))
        y = conv(self.features, (3, 3), padding=1)(y)
        y = norm(scale_init=nn.initializers.ones)(y)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = conv(self.features, (1, 1), strides=self.stride)(x)
            x = norm()(x)
        return nn.relu(x + y)


class _ResNet(nn.Module):
    widths: Sequence[int]
    blocks: Sequence[int]
    num_classes: int = 10
    dtype: Any = jnp.float32
    pool: bool = False  # downsample with a 2x2 max-pool before each stage instead of a strided conv

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        x = nn.Conv(self.widths[0], (3, 3), padding=1, use_bias=False, dtype=self.dtype, kernel_init=_conv_init)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x))
        for i, (w, n) in enumerate(zip(self.widths, self.blocks)):
            if self.pool:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            for j in range(n):
                stride = 2 if (i > 0 and j == 0 and not self.pool) else 1
                x = BasicBlock(w, stride=stride, dtype=self.dtype)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class ResNet18(_ResNet):
    """ResNet-18 for CIFAR (He et al. 2016 as adapted by kuangliu/pytorch-cifar): 3x3 stem, no max-pool,
    stages of 2 BasicBlocks at 64/128/256/512 channels, 11.2M parameters."""

    widths: Sequence[int] = (64, 128, 256, 512)
    blocks: Sequence[int] = (2, 2, 2, 2)


class SmallResNet(_ResNet):
    """A small ResNet for CPU-sized runs: 3x3 stem at 32x32, then three stages, each a 2x2 max-pool and one
    BasicBlock (32/64/128 channels at 16x16, 8x8, 4x4), global average pool; 0.31M parameters. Pooling
    before each stage makes it ~2.8x faster on CPU than the same blocks with strided convolutions at full
    resolution (measured 2026-11-29 on a 2-core CPU: 358 vs 129 training images per second)."""

    widths: Sequence[int] = (32, 64, 128)
    blocks: Sequence[int] = (1, 1, 1)
    pool: bool = True


MODELS = {"resnet18": ResNet18, "small": SmallResNet}


def num_params(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))
