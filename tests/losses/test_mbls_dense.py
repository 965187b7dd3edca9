"""MbLS on dense (segmentation) inputs: every pixel a sample, ignore_index out of CE and penalty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.losses import functional as LF


def _reference(z: np.ndarray, y: np.ndarray, margin: float, alpha: float, ignore: int | None) -> np.ndarray:
    """Per-pixel loss [N, H, W] in NumPy (0 at ignored pixels)."""
    zz = np.moveaxis(z, 1, -1).astype(np.float64)  # [N, H, W, K]
    lse = np.log(np.exp(zz - zz.max(-1, keepdims=True)).sum(-1)) + zz.max(-1)
    yy = np.where(y == ignore, 0, y) if ignore is not None else y
    ce = lse - np.take_along_axis(zz, yy[..., None], -1)[..., 0]
    pen = np.maximum(zz.max(-1, keepdims=True) - zz - margin, 0).mean(-1)
    out = ce + alpha * pen
    return out * (y != ignore) if ignore is not None else out


@pytest.mark.parametrize("ignore", [None, 255])
def test_dense_matches_per_pixel_reference(ignore):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64) * 8
    y = torch.randint(0, 4, (2, 5, 3), generator=g)
    if ignore is not None:
        y[0, :2] = ignore
    ref = _reference(z.numpy(), y.numpy(), 3.0, 0.2, ignore)
    none = LF.mbls(z, y, margin=3.0, alpha=0.2, ignore_index=ignore, reduction="none")
    assert none.shape == y.shape
    np.testing.assert_allclose(none.numpy(), ref, rtol=1e-12, atol=1e-12)
    count = (y != ignore).sum().item() if ignore is not None else y.numel()
    mean = LF.mbls(z, y, margin=3.0, alpha=0.2, ignore_index=ignore)
    assert float(mean) == pytest.approx(ref.sum() / count, rel=1e-12)


def test_ignored_pixels_get_no_gradient_and_module_agrees():
    z = (torch.randn(1, 3, 4, 4, dtype=torch.float64) * 20).requires_grad_(True)
    y = torch.randint(0, 3, (1, 4, 4))
    y[0, 0] = -1
    obj = losses.create("mbls", num_classes=3, margin=5.0, ignore_index=-1)
    loss = obj(z, y)
    loss.backward()
    assert torch.all(z.grad[0, :, 0] == 0) and torch.any(z.grad[0, :, 1:] != 0)
    assert torch.equal(loss, LF.mbls(z.detach(), y, margin=5.0, ignore_index=-1))


def test_dense_label_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="labels: expected shape"):
        LF.mbls(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))
