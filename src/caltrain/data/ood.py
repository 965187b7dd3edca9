"""Out-of-distribution sets paired with a dataset: selection by name and the generic generators.

A dataset factory builds every pairing it offers as a lazy source (a zero-argument function returning a
:class:`~caltrain.data.splits.Split`) and lets the user choose with its ``ood`` option through
:func:`select_ood`: ``None`` takes the dataset's default pairings, ``"all"`` every one, a name or a list of
names just those (unknown names fail with the list of valid ones).

Generic pairings every image dataset can offer:

- ``uniform_noise``: images whose pixels are independent and uniform on 0..255 (far OOD, label -1);
- ``<corruption>-<severity>``: the test split under a CIFAR-10-C corruption (:mod:`caltrain.data.corruptions`;
  labels kept, so accuracy under shift can be measured too).

Example:
    >>> sources = {"a": lambda: None, "b": lambda: None}
    >>> sorted(select_ood(sources, None, default=("a",)))
    ['a']
    >>> sorted(select_ood(sources, "all", default=()))
    ['a', 'b']
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Mapping, Sequence

import torch

from caltrain.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from caltrain.data.seeding import make_generator
from caltrain.data.splits import NO_LABEL, Split

__all__ = ["corruption_sources", "select_ood", "uniform_noise_split"]

OODSource = Callable[[], Split]


def select_ood(
    sources: Mapping[str, OODSource],
    ood: str | Sequence[str] | None,
    *,
    default: Iterable[str],
) -> dict[str, OODSource]:
    """The sources named by ``ood``: ``None`` -> ``default``, ``"all"`` -> all, else the given name(s)."""
    if ood is None:
        wanted = list(default)
    elif ood == "all":
        wanted = list(sources)
    else:
        wanted = [ood] if isinstance(ood, str) else list(ood)
    unknown = [n for n in wanted if n not in sources]
    if unknown:
        raise ValueError(
            f"ood: unknown OOD set(s) {', '.join(map(repr, unknown))}; valid names: "
            f"{', '.join(sources) or '(none)'} (or 'all', or None for the default)"
        )
    return {n: sources[n] for n in wanted}


def uniform_noise_split(n: int, shape: tuple[int, ...], *, seed: int) -> Split:
    """``n`` images of ``shape`` (C, H, W) with i.i.d. uniform pixels on 0..255, labels :data:`NO_LABEL`."""
    x = torch.randint(0, 256, (n, *shape), generator=make_generator(seed, "uniform_noise"), dtype=torch.uint8)
    return Split(x, torch.full((n,), NO_LABEL, dtype=torch.int64))


def _corrupted(split: Split, name: str, severity: int, seed: int) -> Split:
    return Split(corrupt(split.x, name, severity, seed=seed), split.y.clone())


def corruption_sources(
    split: Split,
    *,
    seed: int,
    corruptions: Iterable[str] = tuple(CORRUPTIONS),
    severities: Iterable[int] = SEVERITIES,
) -> dict[str, OODSource]:
    """Lazy sources ``"<corruption>-<severity>"`` of ``split`` corrupted, for every pair asked for."""
    return {
        f"{name}-{severity}": partial(_corrupted, split, name, severity, seed)
        for name in corruptions
        for severity in severities
    }
