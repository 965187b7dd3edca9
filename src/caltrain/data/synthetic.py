"""``synthetic``: a Gaussian-mixture classification task whose true posterior p(y | x) is known.

Generative model, with K classes in D dimensions:

    y ~ Categorical(pi),   x | y ~ N(mu_y, I_D),
    observed label: y~ = y with probability 1 - eta, else a label drawn uniformly from all K classes,

so the probability of the *observed* label is exactly

    p(y~ = k | x) = (1 - eta) * softmax_k( log pi_k - ||x - mu_k||^2 / 2 ) + eta / K.

Symbols: pi the class prior (the exponential profile pi_k ∝ rho^(-k/(K-1)) with rho = ``imbalance``; uniform
for rho = 1), mu_k the class means (random directions scaled so that two means are about ``separation``
noise standard deviations apart: mu_k = separation / sqrt(2) * u_k, u_k uniform on the unit sphere),
eta = ``label_noise``. A model that outputs this posterior is perfectly calibrated, and the true calibration
error of any model, E|E[P(correct | x) | conf(x)] - conf(x)|, becomes computable with P(correct | x) in place
of the 0/1 correctness (:func:`caltrain.metrics.true_calibration_error`): a ground truth to compare the binned
estimates against.

The mixture (means, shift direction, far cluster) is a pure function of ``task_seed``; the samples and
splits of ``seed``. The three splits are drawn independently, so changing one size leaves the others
unchanged. ``true_posterior`` (``float64 [N, K]``) is computed from the stored float32 inputs.

Defaults (10 classes, 32 dimensions, separation 4, no label noise, 2000 / 1000 / 2000 samples; the Bayes
classifier is right about 88% of the time) make the problem this library exists for visible at once: an
MLP trained with plain cross-entropy fits the training split perfectly and is over-confident on the test
split (docs/data.md has the measured figures).

OOD pairings (``ood`` option; default both):

- ``shifted``: the test split with every input moved by ``ood_shift`` standard deviations along a fixed
  random direction (covariate shift; labels kept, true posterior known: that of x - shift);
- ``far``: samples of N(c, I_D) around a centre c twice as far from the origin as the farthest class mean
  plus ``separation`` (label -1).

Example:
    >>> ds = synthetic(root=None, seed=0, train_size=100, val_size=10, test_size=50)
    >>> ds.train.x.shape, ds.test.true_posterior.shape
    (torch.Size([100, 32]), torch.Size([50, 10]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch

from caltrain.data.label_noise import noisy_posterior, symmetric_label_noise
from caltrain.data.long_tail import exponential_profile
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS
from caltrain.data.seeding import make_generator
from caltrain.data.splits import NO_LABEL, DatasetSplits, Split, channel_stats
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["GaussianMixture", "synthetic"]


@dataclass(frozen=True)
class GaussianMixture:
    """An isotropic Gaussian mixture with symmetric label noise (see the module docstring).

    Attributes:
        means: ``float64 [K, D]`` class means mu_k.
        prior: ``float64 [K]`` class prior pi (sums to 1).
        label_noise: eta in [0, 1].
    """

    means: torch.Tensor
    prior: torch.Tensor
    label_noise: float = 0.0

    @classmethod
    def random(
        cls,
        num_classes: int,
        dim: int,
        *,
        separation: float,
        imbalance: float = 1.0,
        label_noise: float = 0.0,
        seed: int = 0,
    ) -> "GaussianMixture":
        """Means along random unit directions u_k scaled by separation / sqrt(2); exponential prior."""
        k = check_positive_int(num_classes, "num_classes", minimum=2)
        d = check_positive_int(dim, "dim")
        sep = check_number(separation, "separation", low=0.0)
        directions = torch.randn(k, d, generator=make_generator(seed, "means"), dtype=torch.float64)
        directions /= directions.norm(dim=1, keepdim=True)
        prior = exponential_profile(k, imbalance)
        return cls(directions * (sep / math.sqrt(2.0)), prior / prior.sum(), label_noise)

    def __post_init__(self) -> None:
        check_number(self.label_noise, "label_noise", low=0.0, high=1.0)

    @property
    def num_classes(self) -> int:
        return int(self.means.shape[0])

    def posterior(self, x: torch.Tensor) -> torch.Tensor:
        """``float64 [N, K]`` probability of each observed label given ``x`` (``[N, D]``), label noise included."""
        x = x.to(torch.float64)
        sq_dist = torch.cdist(x, self.means).pow(2)
        return noisy_posterior(torch.softmax(self.prior.log() - 0.5 * sq_dist, dim=1), self.label_noise)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples: ``float32 [n, D]`` inputs and ``int64 [n]`` observed labels."""
        y = torch.multinomial(self.prior, n, replacement=True, generator=generator)
        x = self.means[y] + torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return x.to(torch.float32), symmetric_label_noise(y, self.num_classes, self.label_noise, generator)

    def split(self, n: int, generator: torch.Generator) -> Split:
        """A :class:`Split` of ``n`` fresh samples with their true posterior."""
        x, y = self.sample(n, generator)
        return Split(x, y, self.posterior(x), augment=())


def _shifted_split(mixture: GaussianMixture, test: Split, shift: torch.Tensor) -> Split:
    x = (test.x.to(torch.float64) + shift).to(torch.float32)
    return Split(x, test.y.clone(), mixture.posterior(x.to(torch.float64) - shift), augment=())


def _far_split(n: int, centre: torch.Tensor, seed: int) -> Split:
    noise = torch.randn(n, centre.numel(), generator=make_generator(seed, "far"), dtype=torch.float64)
    return Split((centre + noise).to(torch.float32), torch.full((n,), NO_LABEL, dtype=torch.int64), augment=())


@DATASETS.register("synthetic")
def synthetic(
    *,
    root: object = None,
    seed: int = 0,
    num_classes: int = 10,
    dim: int = 32,
    separation: float = 4.0,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    train_size: int = 2000,
    val_size: int = 1000,
    test_size: int = 2000,
    task_seed: int = 0,
    ood_shift: float = 2.0,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """The Gaussian-mixture dataset (module docstring); ``root`` is unused (nothing is read from disk)."""
    mixture = GaussianMixture.random(
        num_classes, dim, separation=separation, imbalance=imbalance, label_noise=label_noise, seed=task_seed
    )
    train, val, test = (
        mixture.split(check_positive_int(size, f"{name}_size"), make_generator(seed, "synthetic", name))
        for name, size in (("train", train_size), ("val", val_size), ("test", test_size))
    )
    task = make_generator(task_seed, "ood")
    shift = torch.randn(dim, generator=task, dtype=torch.float64)
    shift *= check_number(ood_shift, "ood_shift", low=0.0) / shift.norm()
    far_dir = torch.randn(dim, generator=task, dtype=torch.float64)
    far_centre = far_dir / far_dir.norm() * 2.0 * (mixture.means.norm(dim=1).max() + separation)
    sources = {
        "shifted": partial(_shifted_split, mixture, test, shift),
        "far": partial(_far_split, len(test), far_centre, seed),
    }
    mean, std = channel_stats(train.x)
    return DatasetSplits(
        name="synthetic",
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        input_shape=(dim,),
        mean=mean,
        std=std,
        kind="features",
        ood_sources=select_ood(sources, ood, default=("shifted", "far")),
    )
