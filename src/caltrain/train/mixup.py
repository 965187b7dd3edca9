"""Mixup as a training setting: the mixed batch whose loss is taken over its two label sets.

Zhang et al. 2018 (arXiv 1710.09412): ``x~ = l x + (1 - l) x[perm]``, ``l ~ Beta(alpha, alpha)`` (one draw per
batch), loss ``l L(z~, y) + (1 - l) L(z~, y[perm])``; Thulasidasan et al. 2019 (arXiv 1905.11001) showed it
improves calibration. RegMixup (Pinto et al. 2022, arXiv 2206.14502) adds that mixed loss, weighted, to the
clean loss ``L(z, y)`` instead of replacing it (alpha = 10 in the paper).

Per-sample objectives (state keyed by dataset index) are called in evaluation mode on mixed inputs, so a mixed
input does not advance sample ``i``'s state. Reading: the papers did not combine mixup with per-sample objectives.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mix_batch"]


def mix_batch(
    inputs: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Return ``(mixed_inputs, perm, lam)`` with ``lam ~ Beta(alpha, alpha)`` and ``perm`` a batch permutation.

    All randomness comes from the CPU ``generator`` (reproducible, and resumable through its state): the Beta
    draw uses a NumPy generator seeded from it, the permutation ``torch.randperm`` on it.
    """
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(inputs.shape[0], generator=generator).to(inputs.device)
    mixed = inputs.mul(lam).add_(inputs[perm], alpha=1 - lam)
    return mixed, perm, lam
