"""Derived random seeds: every random choice in caltrain.data is a pure function of named integers.

A dataset's split, a synthetic sample, an epoch's permutation and an epoch's augmentation each draw from
their own ``torch.Generator`` seeded by :func:`derive_seed` over a tuple such as ``(seed, "split")`` or
``(seed, epoch, rank, "augment")``. NumPy's ``SeedSequence`` mixes the parts (strings are hashed with CRC-32),
so nearby seeds give unrelated streams and no stream depends on how many numbers another one consumed.
That is what makes a run resumed at an epoch boundary see exactly the batches it would have seen.

Example:
    >>> derive_seed(0, "split") == derive_seed(0, "split")
    True
    >>> derive_seed(0, "split") != derive_seed(1, "split")
    True
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["derive_seed", "make_generator"]


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (non-negative ints and strings)."""
    words = []
    for part in parts:
        if isinstance(part, str):
            words.append(zlib.crc32(part.encode("utf-8")))
        elif isinstance(part, (int, np.integer)) and not isinstance(part, bool) and part >= 0:
            words.append(int(part))
        else:
            raise ValueError(f"seed parts: expected non-negative integers or strings, got {part!r}")
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def make_generator(*parts: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``parts``.

    Random numbers are always drawn on the CPU (and moved to the device when needed), so a run draws the
    same numbers on every device.
    """
    return torch.Generator().manual_seed(derive_seed(*parts))
