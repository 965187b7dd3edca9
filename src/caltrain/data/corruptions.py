"""CIFAR-10-C corruptions on whole uint8 image batches: Gaussian noise, Gaussian blur, contrast.

Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations"
(arXiv 1903.12261), CIFAR-10-C parameters from the authors' ``make_cifar_c.py``; with x on the [0, 1] scale:

- ``gaussian_noise``: x + e, e ~ N(0, c^2) per pixel, c = 0.04, 0.06, 0.08, 0.09, 0.10 for severity 1..5;
- ``gaussian_blur``: a Gaussian filter of standard deviation c = 0.4, 0.6, 0.7, 0.8, 1.0 pixels on each
  channel (kernel truncated at 4 standard deviations, edges repeat the border pixel: skimage's defaults);
- ``contrast``: (x - m) * c + m with m the image's per-channel mean, c = 0.75, 0.5, 0.4, 0.3, 0.15;

then clip to [0, 1] and store ``uint8(255 x)`` (truncation, as the authors' script saves its arrays; we add
1e-6 before truncating so that an unchanged pixel stays unchanged despite float rounding).
The noise is a pure function of ``seed``, the corruption and the severity.

Example:
    >>> import torch
    >>> x = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    >>> bool((corrupt(x, "contrast", 5, seed=0) == x).all())  # a flat image has no contrast to lose
    True
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from caltrain.data.seeding import make_generator
from caltrain.utils.checks import check_choice

__all__ = ["CORRUPTIONS", "SEVERITIES", "contrast", "corrupt", "gaussian_blur", "gaussian_noise"]

#: Severity levels of every corruption.
SEVERITIES = (1, 2, 3, 4, 5)

_NOISE_STD = (0.04, 0.06, 0.08, 0.09, 0.10)
_BLUR_SIGMA = (0.4, 0.6, 0.7, 0.8, 1.0)
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)


def gaussian_noise(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``x + N(0, c^2)`` on the [0, 1] scale (float64 in and out, unclipped)."""
    std = _NOISE_STD[severity - 1]
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """The normalised 1-D Gaussian kernel of scipy/skimage: radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def gaussian_blur(x: torch.Tensor, severity: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-channel separable Gaussian filter with border replication (float64 in and out)."""
    kernel = gaussian_kernel(_BLUR_SIGMA[severity - 1]).to(x.dtype)
    r = (kernel.numel() - 1) // 2
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def contrast(x: torch.Tensor, severity: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(x - m) * c + m``, m the per-image, per-channel mean (float64 in and out)."""
    m = x.mean(dim=(2, 3), keepdim=True)
    return (x - m) * _CONTRAST[severity - 1] + m


#: name -> function ``(x float64 [N, C, H, W] on [0, 1], severity, generator) -> float64``.
CORRUPTIONS: dict[str, Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
}


def corrupt(x: torch.Tensor, name: str, severity: int, *, seed: int = 0, batch: int = 2048) -> torch.Tensor:
    """Corrupt ``uint8 [N, C, H, W]`` images; returns ``uint8`` images of the same shape.

    Args:
        x: images, pixel values 0..255.
        name: one of :data:`CORRUPTIONS`.
        severity: 1..5.
        seed: the noise of ``gaussian_noise`` is a pure function of ``(seed, name, severity)``.
        batch: images converted to float64 at a time (bounds memory).
    """
    check_choice(name, "name", CORRUPTIONS)
    check_choice(severity, "severity", SEVERITIES)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(f"x: expected uint8 images [N, C, H, W], got {x.dtype} of shape {tuple(x.shape)}")
    fn = CORRUPTIONS[name]
    generator = make_generator(seed, name, severity)
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], batch):
        chunk = x[start : start + batch].to(torch.float64) / 255.0
        corrupted = fn(chunk, severity, generator).clamp_(0.0, 1.0) * 255.0
        # Truncation as in the authors' np.uint8(...); the 1e-6 keeps an unchanged pixel v from becoming v - 1
        # through the rounding error of v / 255 * 255.
        out[start : start + batch] = (corrupted + 1e-6).floor_().to(torch.uint8)
    return out

