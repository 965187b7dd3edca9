"""Models: parameter counts against the papers, output shapes of every registry entry, determinism, errors."""

import pytest
import torch

from caltrain import models
from caltrain.models.densenet import DenseNet
from caltrain.models.resnet import ResNet
from caltrain.models.resnet_cifar import CifarResNet
from caltrain.models.vgg import SelectiveVGG16
from caltrain.models.wide_resnet import PostActWideResNet, PreActWideResNet
from caltrain.utils.registry import UnknownNameError

#: Exact counts for 10 classes on 3x32x32, each equal to the authors' own implementation (checked by
#: loading the same weights into both and comparing outputs).
EXACT = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "wrn28_10": 36_479_194,
    "wrn26_10": 36_481_434,
    "densenet121": 6_956_298,
    "vgg16_bn": 14_991_946,
}
#: The papers' rounded figures: He et al. 2016 Table 6, Zagoruyko & Komodakis 2016 Table 4.
PAPER_MILLIONS = {"resnet20": 0.27, "resnet32": 0.46, "resnet56": 0.85, "resnet110": 1.7, "wrn28_10": 36.5}


def count_on_meta(name, **kwargs):
    with torch.device("meta"):
        return models.num_parameters(models.create(name, **{"num_classes": 10, **kwargs}))


@pytest.mark.parametrize("name", sorted(EXACT))
def test_parameter_counts(name):
    n = count_on_meta(name)
    assert n == EXACT[name]
    if name in PAPER_MILLIONS:
        assert round(n / 1e6, 2 if n < 1e6 else 1) == PAPER_MILLIONS[name]


def cifar_resnet_count(depth, k=10, shortcut="A"):
    """He et al.'s CIFAR ResNet from its description: 3x3 convs, BN (2 per channel), 16/32/64 channels."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # stem conv + BN
    cin = 16
    for c in (16, 32, 64):
        for i in range(n):
            total += cin * c * 9 + 2 * c + c * c * 9 + 2 * c
            if shortcut == "B" and cin != c:
                total += cin * c + 2 * c
            cin = c
    return total + 64 * k + k


@pytest.mark.parametrize("depth", [20, 32, 56, 110])
def test_cifar_resnet_count_follows_the_architecture_formula(depth):
    assert count_on_meta(f"resnet{depth}") == cifar_resnet_count(depth)
    assert count_on_meta(f"resnet{depth}", shortcut="B") == cifar_resnet_count(depth, shortcut="B")


def test_output_count_follows_num_classes_and_abstention():
    assert count_on_meta("resnet20", num_classes=11) - count_on_meta("resnet20") == 65  # one more output row


@pytest.mark.parametrize("name", models.names())
def test_every_model_builds_and_has_the_right_output_shape(name):
    # On the meta device: shapes propagate with no memory and no compute, even for WRN-28-10.
    shape = (64,) if name == "mlp" else (3, 32, 32)
    with torch.device("meta"):
        model = models.create(name, num_classes=7, input_shape=shape)
        out = model.eval()(torch.empty(2, *shape))
    expected = (2, 7, 32, 32) if name in DENSE else (2, 7)
    assert tuple(out.shape) == expected


#: Models with one output map per class at the input resolution ([N, K, H, W] logits).
DENSE = {"unet", "resnet_fpn"}


#: Small members of each architecture family, to run real forwards cheaply.
SMALL = {
    "mlp": lambda: models.create("mlp", num_classes=5, input_shape=(3, 16, 16)),
    "cnn": lambda: models.create("cnn", num_classes=5),
    "cifar_resnet": lambda: CifarResNet(8, 5),
    "resnet_basic": lambda: ResNet("basic", (1, 1, 1, 1), 5),
    "resnet_bottleneck": lambda: ResNet("bottleneck", (1, 1, 1, 1), 5),
    "wrn_preact": lambda: PreActWideResNet(10, 1, 5, dropout=0.3),
    "wrn_postact": lambda: PostActWideResNet(8, 1, 5),
    "densenet": lambda: DenseNet((2, 2, 2, 2), 4, 5),
    "vgg16_bn": lambda: SelectiveVGG16(5),
    "unet": lambda: models.create("unet", num_classes=5, width=4, depth=2),
    "resnet_fpn": lambda: models.create("resnet_fpn", num_classes=5, width=8),
}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_forward_is_finite_and_deterministic_given_a_seed(family):
    size = 32 if family == "vgg16_bn" else 16  # global pooling makes the others size-agnostic
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    a = SMALL[family]().eval()
    torch.manual_seed(1)
    b = SMALL[family]().eval()
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    assert torch.isfinite(out_a).all() and out_a.equal(out_b) and out_a.shape[1] == 5
    a.train()
    loss = a(x).float().pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters() if p.requires_grad)


def test_seed_argument_fixes_weights_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    a = models.create("resnet20", num_classes=10, seed=3)
    assert torch.random.get_rng_state().equal(state)
    b = models.create("resnet20", num_classes=10, seed=3)
    c = models.create("resnet20", num_classes=10, seed=4)
    assert all(u.equal(v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(u.equal(v) for u, v in zip(a.state_dict().values(), c.state_dict().values()))


def test_option_a_shortcut_is_subsampling_plus_zero_channels():
    block = CifarResNet(8, 10).blocks[1]  # first block of stage 2: 16 -> 32 channels, stride 2
    x = torch.randn(2, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert out[:, 8:24].equal(x[:, :, ::2, ::2]) and (out[:, :8] == 0).all() and (out[:, 24:] == 0).all()


def test_unet_keeps_the_input_size_and_in_channels_follow_input_shape():
    net = models.create("unet", num_classes=1, input_shape=(1, 30, 22), width=4, depth=2).eval()
    assert net(torch.randn(2, 1, 30, 22)).shape == (2, 1, 30, 22)
    cnn = models.create("cnn", num_classes=10, input_shape=(1, 8, 8))
    assert cnn(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_vgg_classifier_size_follows_the_input_size():
    with torch.device("meta"):
        v64 = models.create("vgg16_bn", num_classes=10, input_shape=(3, 64, 64))
    assert v64.classifier[0].in_features == 2048  # the authors' 64x64 variant


def test_init_follows_the_reference_code():
    vgg = SelectiveVGG16(10)
    conv = vgg.features[0]
    with torch.no_grad():
        assert float(conv.bias.abs().max()) == 0.0 and abs(float(conv.weight.std()) - (2 / (9 * 64)) ** 0.5) < 0.01
        assert abs(float(vgg.classifier[-1].weight.std()) - 0.01) < 0.002
        wrn = PreActWideResNet(10, 2, 10)
        assert abs(float(wrn.blocks[1].conv1.weight.std()) - (2 / (9 * 64)) ** 0.5) < 0.005


@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("resnet21", {}, UnknownNameError, r"unknown model 'resnet21'.*Did you mean.*Valid names: cnn"),
        ("resnet20", {"shortcut": "C"}, ValueError, "shortcut: expected one of 'A', 'B'"),
        ("resnet20", {"width": 2}, TypeError, r"unknown parameter\(s\) 'width'; valid parameters: shortcut"),
        ("mlp", {}, ValueError, "needs the input shape"),
        ("mlp", {"input_shape": (4,), "activation": "swish"}, ValueError, "activation"),
        ("resnet18", {"input_shape": (16,)}, ValueError, r"takes images \(C, H, W\)"),
        ("vgg16_bn", {"input_shape": (3, 48, 48)}, ValueError, "multiples of 32"),
        ("cnn", {"input_shape": (1, 2, 2), "widths": (4, 4, 4, 4)}, ValueError, "too small"),
        ("cnn", {"num_classes": 0}, ValueError, "num_classes"),
    ],
)
def test_bad_arguments_fail_clearly(name, kwargs, error, match):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(error, match=match):
        models.create(name, **kwargs)
