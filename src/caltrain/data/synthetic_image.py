"""``synthetic_image``: CIFAR-shaped images (3x32x32) of class patterns plus noise, with a known posterior.

Generative model of one image, with K classes, image size H (default 32) and patch size S = H / 2:

    y ~ Categorical(pi)                         (uniform unless ``imbalance`` > 1, as in ``synthetic``)
    a ~ Uniform(contrasts)                      (the pattern's contrast; default 3, 6 or 64 grey levels)
    (r, c) ~ Uniform(grid)                      (the patch's top-left corner, on a stride-S/2 grid: 3x3 places)
    mean = 128 everywhere, plus a * m_y on the S x S patch at (r, c)
    x = clip(round(mean + sigma * e), 0, 255),  e ~ N(0, I),  stored as uint8

where m_k in {0, 1}^(3 x S x S) is class k's pattern: stripes of period 6 pixels at one of ceil(K/3)
orientations, in one of three two-channel colours (yellow, cyan, magenta), so every class differs from
every other in orientation or colour and a small CNN learns them from local features. With label noise
eta the observed label is replaced, with probability eta, by one uniform over all K classes.

Because pixels are independent given (y, a, r, c), the posterior of the *stored* (quantised, clipped) image
is exact:

    log p(x | y=k) = const + logsumexp_{a, (r, c)} [ log p(a) + log p(r, c) + sum_{p in patch} m_k(p) D_a(x_p) ]
    D_a(v) = log P(v | mean 128 + a) - log P(v | mean 128),
    P(v | mu) = Phi((v + 1/2 - mu) / sigma) - Phi((v - 1/2 - mu) / sigma)   (v = 0 and 255 take the tails),
    p(observed label = k | x) = (1 - eta) * softmax_k(log pi_k + log p(x | k)) + eta / K,

computed in float64 (log-differences of normal CDFs via ``log_ndtr``; the patch sums by one matmul of
image blocks against pattern quadrants).

The three contrasts make the problem: at 64 grey levels (2 sigma) a pattern is plain to see, at 3 and 6 it
is nearly buried in noise, so a third of the images are easy and two thirds are ambiguous. A CNN trained with
plain cross-entropy memorises the ambiguous training images and is over-confident on the test split.
Standard augmentation: random crop (translation keeps the class; a flip would create unseen patterns).

OOD pairings (``ood`` option; default all): ``uniform_noise`` and the test split under the CIFAR-10-C
corruptions ``gaussian_noise``, ``gaussian_blur``, ``contrast`` at severities 1..5 (labels kept).

Example:
    >>> ds = synthetic_image(root=None, seed=0, train_size=20, val_size=10, test_size=10)
    >>> ds.train.x.shape, ds.train.x.dtype, ds.test.true_posterior.shape
    (torch.Size([20, 3, 32, 32]), torch.uint8, torch.Size([10, 10]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch

from caltrain.data.label_noise import noisy_posterior, symmetric_label_noise
from caltrain.data.long_tail import exponential_profile
from caltrain.data.ood import corruption_sources, select_ood, uniform_noise_split
from caltrain.data.registry import DATASETS
from caltrain.data.seeding import make_generator
from caltrain.data.splits import DatasetSplits, Split, channel_stats
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["PatternImages", "log_bin_probs", "stripe_patterns", "synthetic_image"]

_BACKGROUND = 128.0
_COLOURS = ((1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0))


def log_bin_probs(mu: float, sigma: float) -> torch.Tensor:
    """``float64 [256]``: log P(clip(round(mu + sigma * e), 0, 255) = v) for v = 0..255, e ~ N(0, 1)."""
    v = torch.arange(256, dtype=torch.float64)
    lo = (v - 0.5 - mu) / sigma
    hi = (v + 0.5 - mu) / sigma
    lo[0], hi[255] = -math.inf, math.inf
    # Phi(hi) - Phi(lo) without cancellation: in the upper tail use Phi(-lo) - Phi(-hi) instead.
    upper = (lo + hi) > 0
    a = torch.where(upper, -hi, lo)
    b = torch.where(upper, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log1p(-torch.exp(torch.special.log_ndtr(a) - log_b))


def stripe_patterns(num_classes: int, size: int, period: float = 6.0) -> torch.Tensor:
    """``float64 [K, 3, size, size]`` binary class patterns: oriented stripes in a two-channel colour."""
    k = check_positive_int(num_classes, "num_classes", minimum=2)
    n_orient = math.ceil(k / len(_COLOURS))
    i = torch.arange(size, dtype=torch.float64)[:, None]
    j = torch.arange(size, dtype=torch.float64)[None, :]
    patterns = []
    for cls in range(k):
        theta = math.pi * (cls % n_orient) / n_orient
        stripes = torch.sin(2 * math.pi * (i * math.cos(theta) + j * math.sin(theta)) / period) > 0
        colour = torch.tensor(_COLOURS[cls // n_orient], dtype=torch.float64)
        patterns.append(colour[:, None, None] * stripes)
    return torch.stack(patterns)


@dataclass(frozen=True)
class PatternImages:
    """The generative model of the module docstring (patterns, contrasts, noise, prior, label noise)."""

    patterns: torch.Tensor
    contrasts: tuple[float, ...]
    noise: float
    prior: torch.Tensor
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        check_number(self.noise, "noise", low=0.0, low_inclusive=False)
        check_number(self.label_noise, "label_noise", low=0.0, high=1.0)
        if not self.contrasts:
            raise ValueError("contrasts: expected at least one contrast level, got none")
        for a in self.contrasts:
            check_number(a, "contrasts", low=0.0, high=255.0 - _BACKGROUND)

    @property
    def num_classes(self) -> int:
        return int(self.patterns.shape[0])

    @property
    def patch(self) -> int:
        return int(self.patterns.shape[-1])

    @property
    def stride(self) -> int:
        return self.patch // 2

    def places(self, image_size: int) -> int:
        """Patch positions per axis."""
        return (image_size - self.patch) // self.stride + 1

    def sample(self, n: int, image_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images ``uint8 [n, 3, H, H]`` and their observed labels ``int64 [n]``."""
        y = torch.multinomial(self.prior, n, replacement=True, generator=generator)
        level = torch.randint(0, len(self.contrasts), (n,), generator=generator)
        row, col = torch.randint(0, self.places(image_size), (2, n), generator=generator) * self.stride
        mean = torch.full((n, 3, image_size, image_size), _BACKGROUND, dtype=torch.float64)
        offsets = torch.arange(self.patch)
        rows = (row[:, None] + offsets)[:, None, :, None]
        cols = (col[:, None] + offsets)[:, None, None, :]
        contrast = torch.tensor(self.contrasts, dtype=torch.float64)[level]
        mean[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols] += (
            contrast[:, None, None, None] * self.patterns[y]
        )
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
        x = (mean + self.noise * noise).round_().clamp_(0, 255).to(torch.uint8)
        return x, symmetric_label_noise(y, self.num_classes, self.label_noise, generator)

    def posterior(self, x: torch.Tensor, *, batch: int = 1024) -> torch.Tensor:
        """``float64 [N, K]`` exact probability of each observed label given ``uint8`` images ``x``."""
        background = log_bin_probs(_BACKGROUND, self.noise)
        gains = torch.stack([log_bin_probs(_BACKGROUND + a, self.noise) - background for a in self.contrasts])
        # A patch spans 2 x 2 blocks of side ``stride``; score every (block, pattern quadrant) pair with one
        # matmul, then add the four quadrant scores of each patch position.
        b, k, places = self.stride, self.num_classes, self.places(x.shape[-1])
        blocks_per_side = x.shape[-1] // b
        quadrants = self.patterns.reshape(k, 3, 2, b, 2, b).permute(2, 4, 0, 1, 3, 5).reshape(4 * k, 3 * b * b)
        log_prior_nuisance = -math.log(len(self.contrasts)) - 2 * math.log(places)
        out = []
        for start in range(0, x.shape[0], batch):
            pixels = x[start : start + batch].long()
            n = pixels.shape[0]
            per_level = []
            for gain in gains:
                g = gain[pixels].reshape(n, 3, blocks_per_side, b, blocks_per_side, b)
                g = g.permute(0, 2, 4, 1, 3, 5).reshape(n * blocks_per_side**2, 3 * b * b)
                s = (g @ quadrants.T).reshape(n, blocks_per_side, blocks_per_side, 2, 2, k)
                scores = sum(
                    s[:, qi : qi + places, qj : qj + places, qi, qj] for qi in range(2) for qj in range(2)
                )  # [n, places, places, K]
                per_level.append(torch.logsumexp(scores.reshape(n, places * places, k), dim=1))
            log_lik = torch.logsumexp(torch.stack(per_level), dim=0) + log_prior_nuisance
            out.append(torch.softmax(self.prior.log() + log_lik, dim=1))
        return noisy_posterior(torch.cat(out), self.label_noise)

    def split(self, n: int, image_size: int, generator: torch.Generator) -> Split:
        x, y = self.sample(n, image_size, generator)
        return Split(x, y, self.posterior(x), augment=("crop",))


@DATASETS.register("synthetic_image")
def synthetic_image(
    *,
    root: object = None,
    seed: int = 0,
    num_classes: int = 10,
    image_size: int = 32,
    contrasts: Sequence[float] = (3.0, 6.0, 64.0),
    noise: float = 32.0,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    train_size: int = 1000,
    val_size: int = 500,
    test_size: int = 1000,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """The pattern images (module docstring); ``noise`` and ``contrasts`` in grey levels; ``root`` unused."""
    size = check_positive_int(image_size, "image_size", minimum=8)
    if size % 4:
        raise ValueError(f"image_size: expected a multiple of 4, got {image_size}")
    prior = exponential_profile(num_classes, imbalance)
    levels = tuple(float(a) for a in contrasts)
    model = PatternImages(stripe_patterns(num_classes, size // 2), levels, noise, prior / prior.sum(), label_noise)
    train, val, test = (
        model.split(check_positive_int(n, f"{name}_size"), size, make_generator(seed, "synthetic_image", name))
        for name, n in (("train", train_size), ("val", val_size), ("test", test_size))
    )
    sources = {
        "uniform_noise": partial(uniform_noise_split, len(test), (3, size, size), seed=seed),
        **corruption_sources(test, seed=seed),
    }
    mean, std = channel_stats(train.x)
    return DatasetSplits(
        name="synthetic_image",
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        input_shape=(3, size, size),
        mean=mean,
        std=std,
        kind="image",
        ood_sources=select_ood(sources, ood, default=tuple(sources)),
    )
