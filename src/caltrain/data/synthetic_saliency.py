"""``synthetic_saliency``: a dense binary (salient-object) task with a known per-pixel posterior.

Generative model of one ``size x size`` RGB image i (every quantity drawn independently per image, all images
of a split at once as tensors; no per-pixel Python):

- background: a base colour 128 + U(-32, 32) per channel, plus a texture: two sinusoidal gratings (period
  U(3, 12) pixels, random orientation and phase, amplitude U(5, 25) grey levels each, random colour weights)
  plus smoothed Gaussian noise (two 3x3 box blurs, standard deviation ``texture`` = 12 grey levels);
- object: one shape, a disc, an ellipse or a rectangle (probability 1/3 each), centre uniform in the middle
  half of the image, half-axes U(0.12, 0.32) * size, rotation U(0, pi) (ellipses and rectangles); its own
  grating texture and a colour offset of ``contrast_i`` ~ U(``contrast``) grey levels along a random unit
  colour direction;
- signed distance d_i(x), **in pixels**, positive inside the object: the exact Euclidean signed distance to
  the boundary for discs and rectangles; for ellipses the radial one, the distance to the boundary along the
  ray from the centre (exact for circles, a close approximation elsewhere). The posterior below is exact for
  whichever d is used, since the labels are drawn from it;
- annotator uncertainty tau_i ~ U(``tau``) pixels (default 0.3 to 3); the image renders the object with a
  boundary blurred by tau_i (foreground weight Phi(d_i(x) / tau_i)), so an uncertain boundary is also a
  visibly soft one and a model can in principle read tau_i off the image;
- pixel noise: N(0, sigma_i^2) with sigma_i ~ U(``noise``) grey levels, then rounded and clipped to uint8;
- the mask: y_i(x) = 1[d_i(x) + u_i > 0] with **one** u_i ~ N(0, tau_i^2) per image (the annotator draws the
  whole boundary a little too wide or too narrow), hence

      P(y_i(x) = 1 | scene) = Phi(d_i(x) / tau_i)   for every pixel x,

  stored as ``true_posterior`` (``float32 [N, 1, H, W]``) and tau_i as ``split.extra["tau"]`` (``float32
  [N]``). Reading: this is the posterior given the latent scene (shape and tau_i) that the image renders; with
  pixel noise a model sees the scene only approximately, so it is the oracle's posterior, the reference of the
  true calibration error. Pixels of one image are dependent through u_i (they share it), which does not
  change any per-pixel probability.

Every split (train, val, test) draws its own images, tau_i and labels from independent generators, so the
test labels are fresh draws. The task is ``"dense_binary"`` (``DatasetSplits.task``), ``num_classes == 1``.
Standard augmentation: ``flip`` and ``rot90`` (applied to images and masks together; both keep the
posterior's meaning).

OOD pairings (``ood`` option; default ``texture_only``): ``texture_only``, background textures without any
object (empty masks, posterior 0), and ``uniform_noise`` (uniform pixels, empty masks).

Example:
    >>> ds = synthetic_saliency(seed=0, n_train=8, n_val=4, n_test=4, size=32)
    >>> ds.task, ds.num_classes, tuple(ds.train.y.shape), ds.train.y.dtype, tuple(ds.train.true_posterior.shape)
    ('dense_binary', 1, (8, 1, 32, 32), torch.uint8, (8, 1, 32, 32))
    >>> tuple(ds.train.extra["tau"].shape), sorted(ds.ood())
    ((8,), ['texture_only'])
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F

from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS
from caltrain.data.seeding import make_generator
from caltrain.data.splits import Split, dataset_from_splits
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["render_scenes", "saliency_split", "signed_distance", "synthetic_saliency"]

SHAPES = ("disc", "ellipse", "rectangle")


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _range(value: Sequence[float], name: str, low: float = 0.0) -> tuple[float, float]:
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or pair[0] > pair[1]:
        raise ValueError(f"{name}: expected a range (low, high) with low <= high, got {value!r}")
    for v in pair:
        check_number(v, name, low=low)
    return pair  # type: ignore[return-value]


def signed_distance(
    shape: torch.Tensor, centre: torch.Tensor, axes: torch.Tensor, angle: torch.Tensor, size: int
) -> torch.Tensor:
    """``float32 [n, 1, size, size]`` signed distance in pixels, positive inside (module docstring).

    Args:
        shape: ``int64 [n]`` index into :data:`SHAPES`.
        centre: ``[n, 2]`` (row, column) of the centre, in pixel coordinates (pixel centres at integers).
        axes: ``[n, 2]`` half-axes (a, b) in pixels (discs use a).
        angle: ``[n]`` rotation in radians.
    """
    grid = torch.arange(size, dtype=torch.float32)
    dr = grid[None, :, None] - centre[:, 0, None, None]
    dc = grid[None, None, :] - centre[:, 1, None, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    u = cos * dc + sin * dr
    v = -sin * dc + cos * dr
    a = axes[:, 0, None, None]
    b = axes[:, 1, None, None]
    r = torch.sqrt(u * u + v * v)
    disc = a - r
    rho = torch.sqrt((u / a) ** 2 + (v / b) ** 2)
    boundary = torch.where(rho > 1e-6, r / rho.clamp_min(1e-6), torch.minimum(a, b))
    ellipse = boundary - r
    qu, qv = u.abs() - a, v.abs() - b
    outside = torch.sqrt(qu.clamp_min(0) ** 2 + qv.clamp_min(0) ** 2)
    rectangle = -(outside + torch.maximum(qu, qv).clamp_max(0))
    s = shape[:, None, None]
    d = torch.where(s == 0, disc, torch.where(s == 1, ellipse, rectangle))
    return d[:, None]


def _gratings(n: int, size: int, g: torch.Generator, count: int, amplitude: tuple[float, float]) -> torch.Tensor:
    """``[n, 3, size, size]`` sum of ``count`` coloured sinusoidal gratings per image."""
    grid = torch.arange(size, dtype=torch.float32)
    out = torch.zeros(n, 3, size, size)
    for _ in range(count):
        period = _uniform(n, 3.0, 12.0, g)
        theta = _uniform(n, 0.0, math.pi, g)
        phase = _uniform(n, 0.0, 2 * math.pi, g)
        amp = _uniform(n, *amplitude, g)
        colour = torch.rand(n, 3, generator=g) * 2 - 1
        k = (2 * math.pi / period)[:, None, None]
        arg = k * (theta.cos()[:, None, None] * grid[None, None, :] + theta.sin()[:, None, None] * grid[None, :, None])
        wave = torch.sin(arg + phase[:, None, None])
        out += (amp[:, None] * colour)[:, :, None, None] * wave[:, None]
    return out


def _background(n: int, size: int, g: torch.Generator, texture: float) -> torch.Tensor:
    base = 128.0 + _uniform(3 * n, -32.0, 32.0, g).view(n, 3, 1, 1)
    noise = torch.randn(n, 3, size, size, generator=g)
    for _ in range(2):
        noise = F.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)
    noise = noise / noise.flatten(1).std(dim=1).clamp_min(1e-6).view(n, 1, 1, 1)
    return base + _gratings(n, size, g, 2, (5.0, 25.0)) + texture * noise


def render_scenes(
    n: int,
    size: int,
    g: torch.Generator,
    *,
    tau: tuple[float, float],
    contrast: tuple[float, float],
    noise: tuple[float, float],
    texture: float,
    with_object: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x uint8 [n, 3, H, W], d float32 [n, 1, H, W], tau float32 [n])`` of ``n`` scenes (module docstring).

    Without an object ``d`` is ``-inf`` everywhere (texture only).
    """
    bg = _background(n, size, g, texture)
    taus = _uniform(n, *tau, g)
    sigma = _uniform(n, *noise, g)
    if with_object:
        shape = torch.randint(0, len(SHAPES), (n,), generator=g)
        centre = size * (0.25 + 0.5 * torch.rand(n, 2, generator=g)) - 0.5
        axes = size * (0.12 + 0.20 * torch.rand(n, 2, generator=g))
        angle = _uniform(n, 0.0, math.pi, g)
        d = signed_distance(shape, centre, axes, angle, size)
        direction = torch.randn(n, 3, generator=g)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-6)
        offset = (_uniform(n, *contrast, g)[:, None] * direction)[:, :, None, None]
        fg = bg + offset + _gratings(n, size, g, 1, (5.0, 15.0))
        weight = torch.special.ndtr(d / taus.view(n, 1, 1, 1))
        image = bg + weight * (fg - bg)
    else:
        d = torch.full((n, 1, size, size), -math.inf)
        image = bg
    image = image + sigma.view(n, 1, 1, 1) * torch.randn(image.shape, generator=g)
    return image.round_().clamp_(0, 255).to(torch.uint8), d, taus


def saliency_split(n: int, size: int, g: torch.Generator, **scene_options) -> Split:
    """A split of ``n`` scenes with masks ``y = 1[d + u > 0]``, ``u ~ N(0, tau^2)`` per image (module docstring)."""
    x, d, tau = render_scenes(n, size, g, **scene_options)
    u = tau * torch.randn(n, generator=g)
    y = (d + u.view(n, 1, 1, 1) > 0).to(torch.uint8)
    posterior = torch.special.ndtr(d / tau.view(n, 1, 1, 1)).to(torch.float32)
    return Split(x, y, posterior, augment=("flip", "rot90"), extra={"tau": tau})


def _texture_only(n: int, size: int, seed: int, scene_options: dict) -> Split:
    g = make_generator(seed, "synthetic_saliency", "texture_only")
    x, _, tau = render_scenes(n, size, g, with_object=False, **scene_options)
    empty = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    return Split(x, empty, torch.zeros(n, 1, size, size), extra={"tau": tau})


def _uniform_noise(n: int, size: int, seed: int) -> Split:
    g = make_generator(seed, "synthetic_saliency", "uniform_noise")
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    empty = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    return Split(x, empty, torch.zeros(n, 1, size, size))


@DATASETS.register("synthetic_saliency")
def synthetic_saliency(
    *,
    root: object = None,
    seed: int = 0,
    n_train: int = 512,
    n_val: int = 128,
    n_test: int = 256,
    size: int = 32,
    tau: Sequence[float] = (0.3, 3.0),
    contrast: Sequence[float] = (20.0, 80.0),
    noise: Sequence[float] = (4.0, 24.0),
    texture: float = 12.0,
    ood: str | Sequence[str] | None = None,
):
    """The salient-object scenes of the module docstring; ``tau`` in pixels, ``contrast``, ``noise`` and
    ``texture`` in grey levels, ``size`` the side H = W; ``root`` unused."""
    side = check_positive_int(size, "size", minimum=8)
    options = dict(
        tau=_range(tau, "tau", low=1e-3),
        contrast=_range(contrast, "contrast"),
        noise=_range(noise, "noise"),
        texture=check_number(texture, "texture", low=0.0),
    )
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    train, val, test = (
        saliency_split(check_positive_int(n, f"n_{name}"), side, make_generator(seed, "synthetic_saliency", name),
                       **options)
        for name, n in sizes.items()
    )
    sources = {
        "texture_only": partial(_texture_only, len(test), side, seed, options),
        "uniform_noise": partial(_uniform_noise, len(test), side, seed),
    }
    return dataset_from_splits(
        "synthetic_saliency",
        (train, val, test),
        num_classes=1,
        ood_sources=select_ood(sources, ood, default=("texture_only",)),
        task="dense_binary",
    )
