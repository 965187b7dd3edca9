"""Whole-batch image augmentation on the device: random crop with zero padding, flips, rotations, cutout.

Each operation acts on a whole batch at once with per-sample random parameters drawn beforehand (see
:func:`draw_params`), so a batch costs a few tensor operations instead of B Python calls:

- ``crop`` (padding p, default H/8 = 4 on 32x32): pad the image with p zero pixels on every side and cut
  out an H x W window at offsets (dy, dx) uniform on {0, ..., 2p}: torchvision's
  ``RandomCrop(H, padding=p)``, the standard CIFAR augmentation (He et al. 2016, Sec. 4.2).
- ``flip``: mirror left-right with probability 1/2 (torchvision's ``RandomHorizontalFlip``), applied after
  the crop; crop and flip are one row gather on the uint8 images.
- ``rot90``: rotate by k * 90 degrees, k uniform on {0, 1, 2, 3} (square images only), after crop and flip;
  with ``flip`` this covers the 8 symmetries of the square (for dense tasks, where a rotated scene is as
  plausible as the original; for classes it would create unseen patterns).
- ``cutout`` (size s, default H/2 = 16 on 32x32): DeVries & Taylor 2017 (arXiv 1708.04552): a centre
  (cy, cx) uniform over the image, the square rows [cy - s//2, cy + s//2) x columns [cx - s//2, cx + s//2)
  clipped to the image set to 0 *after* normalisation (i.e. to the dataset mean), as in the authors' code,
  where Cutout follows ``Normalize``.

An augmentation is named by a string or a list of them, each ``"op"`` or ``"op:int"`` to set its
parameter: ``"crop"``, ``["crop:2", "flip"]``, ``"crop,flip,cutout:8"``.

Dense tasks (masks ``[B, 1, H, W]``): the geometric operations (crop, flip, rot90) are applied to the image
and its mask with the *same* parameters (:func:`geometric`, :func:`augment_pair`), nearest-neighbour by
construction (pixels are moved, never interpolated), so a mask stays aligned with its image; the crop pads
masks with 0 (background). Cutout changes the image only (the object is still there, just hidden).

Example:
    >>> import torch
    >>> x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    >>> crop_flip(x, torch.tensor([1]), torch.tensor([1]), torch.tensor([False]), pad=1).equal(x)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from caltrain.data.splits import AUGMENT_OPS
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = ["AugmentOp", "augment_pair", "crop_flip", "cutout", "draw_params", "geometric", "parse_augment", "rot90"]


@dataclass(frozen=True)
class AugmentOp:
    """One augmentation operation and its integer parameter (crop padding or cutout size; 0 for flip)."""

    name: str
    param: int = 0


def default_param(name: str, height: int) -> int:
    """Crop padding H/8 (4 on 32x32), cutout size H/2 (16 on 32x32), at least 1; flip has none."""
    if name == "crop":
        return max(1, round(height / 8))
    if name == "cutout":
        return max(1, height // 2)
    return 0


def parse_augment(augment: str | Sequence[str], height: int) -> tuple[AugmentOp, ...]:
    """Parse ``"crop,flip:..."`` / ``["crop:4", "flip"]`` into operations with their parameters resolved."""
    items = augment.split(",") if isinstance(augment, str) else list(augment)
    ops = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"augment: expected operation names (strings), got {item!r}")
        name, _, param = item.strip().partition(":")
        check_choice(name, "augment", AUGMENT_OPS)
        if param and name in ("flip", "rot90"):
            raise ValueError(f"augment: {name!r} takes no parameter, got {item!r}")
        if param:
            if not param.isdigit():
                raise ValueError(f"augment: expected '{name}:<integer>', got {item!r}")
            value = check_positive_int(int(param), f"augment {name}")
        else:
            value = default_param(name, height)
        ops.append(AugmentOp(name, value))
    names = [op.name for op in ops]
    if len(set(names)) != len(names):
        raise ValueError(f"augment: each operation may appear once, got {names}")
    return tuple(ops)


def draw_params(
    n: int, ops: Sequence[AugmentOp], height: int, width: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Per-sample random parameters for ``n`` samples, drawn on the CPU from ``generator``.

    Returns ``dy, dx`` (crop offsets in [0, 2p]), ``flip`` (bool), ``rot`` (quarter turns in 0..3) and
    ``cy, cx`` (cutout centres) for the operations in ``ops``; every tensor has shape ``[n]``.
    """
    params: dict[str, torch.Tensor] = {}
    for op in ops:
        if op.name == "crop":
            params["dy"] = torch.randint(0, 2 * op.param + 1, (n,), generator=generator)
            params["dx"] = torch.randint(0, 2 * op.param + 1, (n,), generator=generator)
        elif op.name == "flip":
            params["flip"] = torch.rand(n, generator=generator) < 0.5
        elif op.name == "rot90":
            if height != width:
                raise ValueError(f"augment: 'rot90' needs square images, got {height}x{width}")
            params["rot"] = torch.randint(0, 4, (n,), generator=generator)
        else:
            params["cy"] = torch.randint(0, height, (n,), generator=generator)
            params["cx"] = torch.randint(0, width, (n,), generator=generator)
    return params


def crop_flip(
    x: torch.Tensor, dy: torch.Tensor | None, dx: torch.Tensor | None, flip: torch.Tensor | None, *, pad: int
) -> torch.Tensor:
    """Random crop (zero padding ``pad``) then horizontal flip of ``x`` (``[B, C, H, W]``), as one row gather.

    ``dy, dx`` (``int64 [B]`` in [0, 2 pad]) are the crop offsets in the padded image (``None`` with
    ``pad=0``: no crop); ``flip`` (``bool [B]`` or ``None``) mirrors the cropped image left-right.

    Every output row is a contiguous run of W values of the padded image (of its mirror image for flipped
    samples: cropping at dx then flipping equals flipping then cropping at 2 pad - dx), so the whole batch
    is one ``index_select`` of B*C*H rows from a strided view: several times faster than a per-element
    gather on a CPU.
    """
    b, c, h, w = x.shape
    device = x.device
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    else:
        dy = dx = torch.zeros(b, dtype=torch.int64, device=device)
    sample = torch.arange(b, device=device)
    if flip is not None:
        x = torch.cat([x, x.flip(-1)])
        sample = sample + b * flip.long()
        dx = torch.where(flip, 2 * pad - dx, dx)
    hp, wp = x.shape[-2:]
    plane = (sample[:, None] * c + torch.arange(c, device=device)) * hp  # [B, C]: first row of each plane
    rows = plane[:, :, None] + (dy[:, None] + torch.arange(h, device=device))[:, None, :]  # [B, C, H]
    starts = rows * wp + dx[:, None, None]
    flat = x.contiguous().view(-1)
    windows = flat.as_strided((flat.numel() - w + 1, w), (1, 1))  # windows[k] = flat[k : k + w]
    return windows.index_select(0, starts.flatten()).view(b, c, h, w)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, *, size: int) -> torch.Tensor:
    """Set the ``size x size`` square centred at ``(cy, cx)`` (clipped to the image) to 0, in place."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    half = size // 2
    in_rows = (rows >= cy[:, None] - half) & (rows < cy[:, None] + half)
    in_cols = (cols >= cx[:, None] - half) & (cols < cx[:, None] + half)
    return x.masked_fill_((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0.0)


def rot90(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate each square image of ``x`` (``[B, C, H, H]``) by ``k[b]`` quarter turns (``int64 [B]``)."""
    turns = torch.stack([x.rot90(q, dims=(-2, -1)) for q in range(4)])  # [4, B, C, H, H]
    return turns[k, torch.arange(x.shape[0], device=x.device)]


def geometric(x: torch.Tensor, params: dict[str, torch.Tensor], ops: dict[str, int]) -> torch.Tensor:
    """Crop, flip and rot90 of ``ops`` (name -> parameter) with ``params`` (:func:`draw_params`) on ``x``.

    Any dtype and channel count: called once on images and once on their masks with the same ``params``.
    """
    if "crop" in ops or "flip" in ops:
        x = crop_flip(x, params.get("dy"), params.get("dx"), params.get("flip"), pad=ops.get("crop", 0))
    if "rot90" in ops:
        x = rot90(x, params["rot"])
    return x


def augment_pair(
    image: torch.Tensor, mask: torch.Tensor, augment: str | Sequence[str], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The geometric operations of ``augment`` applied jointly to images ``[B, C, H, W]`` and masks
    ``[B, 1, H, W]`` (same random parameters, drawn on the CPU from ``generator``; tensors stay on their device).

    Example:
        >>> x = torch.arange(32, dtype=torch.uint8).reshape(2, 1, 4, 4)
        >>> a, b = augment_pair(x, x.clone(), "crop:1,flip,rot90", torch.Generator().manual_seed(0))
        >>> a.equal(b)
        True
    """
    if image.shape[0] != mask.shape[0] or image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"augment_pair: image {tuple(image.shape)} and mask {tuple(mask.shape)} do not match")
    height, width = (int(s) for s in image.shape[-2:])
    ops = {op.name: op.param for op in parse_augment(augment, height) if op.name != "cutout"}
    chosen = [AugmentOp(n, p) for n, p in ops.items()]
    params = {k: v.to(image.device) for k, v in draw_params(image.shape[0], chosen, height, width, generator).items()}
    return geometric(image, params, ops), geometric(mask, params, ops)
