"""Dense models: one binary logit per pixel ([N, 1, H, W]) at the input resolution, with gradients."""

import pytest
import torch

from caltrain import models


@pytest.mark.parametrize(
    "name, options",
    [
        ("unet", dict(width=4, depth=2)),
        ("resnet_fpn", dict(width=8)),
        ("resnet_fpn", dict(width=8, depth=34)),
        ("resnet_fpn", dict(width=8, stem="imagenet")),
    ],
)
@pytest.mark.parametrize("size", [(32, 32), (30, 22)])
def test_binary_logits_at_input_resolution(name, options, size):
    with torch.device("meta"):
        net = models.create(name, num_classes=1, input_shape=(3, *size), **options)
        assert tuple(net.eval()(torch.empty(2, 3, *size)).shape) == (2, 1, *size)
        multi = models.create(name, num_classes=4, **options)
        assert tuple(multi.eval()(torch.empty(2, 3, *size)).shape) == (2, 4, *size)


@pytest.mark.parametrize("name, options", [("unet", dict(width=4, depth=2)), ("resnet_fpn", dict(width=8))])
def test_bce_gradient_reaches_every_parameter(name, options):
    net = models.create(name, num_classes=1, seed=0, **options)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = (x[:, :1] > 0).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), mask)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_resnet_fpn_gradient_check_in_float64():
    """Autograd against finite differences on a tiny float64 decoder (eval mode: BatchNorm is a fixed affine)."""
    net = models.create("resnet_fpn", num_classes=1, seed=0, width=2).double().eval()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t).sum(), (x,), eps=1e-6, atol=1e-5)


def test_resnet_fpn_rejects_bad_options():
    with pytest.raises(ValueError, match="depth"):
        models.create("resnet_fpn", num_classes=1, depth=50)
    with pytest.raises(ValueError, match="stem"):
        models.create("resnet_fpn", num_classes=1, stem="vit")
    with pytest.raises(ValueError, match="takes images"):
        models.create("resnet_fpn", num_classes=1, input_shape=(10,))
