"""CIFAR-10-C corruptions against NumPy/SciPy references of the authors' formulas."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from caltrain.data.corruptions import CORRUPTIONS, corrupt, gaussian_kernel


def to_uint8(x01):
    """The authors' np.uint8(np.clip(x, 0, 1) * 255), with our 1e-6 guard against float rounding."""
    return np.floor(np.clip(x01, 0, 1) * 255 + 1e-6).astype(np.uint8)


@pytest.fixture
def images(rng):
    return torch.from_numpy(rng.integers(0, 256, (6, 3, 12, 12), dtype=np.uint8))


@pytest.mark.parametrize("severity, sigma", [(1, 0.4), (3, 0.7), (5, 1.0)])
def test_gaussian_blur_matches_scipy(images, severity, sigma):
    x = images.numpy() / 255.0
    ref = to_uint8(np.stack([[gaussian_filter(ch, sigma, mode="nearest", truncate=4.0) for ch in img] for img in x]))
    diff = np.abs(corrupt(images, "gaussian_blur", severity).numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01  # equal up to float rounding at integer boundaries


@pytest.mark.parametrize("severity, c", [(1, 0.75), (5, 0.15)])
def test_contrast_matches_numpy(images, severity, c):
    x = images.numpy() / 255.0
    means = x.mean(axis=(2, 3), keepdims=True)
    ref = to_uint8((x - means) * c + means)
    diff = np.abs(corrupt(images, "contrast", severity).numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_gaussian_noise_has_the_cifar10c_standard_deviations():
    grey = torch.full((20, 3, 16, 16), 128, dtype=torch.uint8)
    for severity, std in zip(range(1, 6), (0.04, 0.06, 0.08, 0.09, 0.10)):
        noisy = corrupt(grey, "gaussian_noise", severity, seed=0).double() / 255.0
        assert float(noisy.std()) == pytest.approx(std, rel=0.05)
    assert corrupt(grey, "gaussian_noise", 3, seed=1).equal(corrupt(grey, "gaussian_noise", 3, seed=1))
    assert not corrupt(grey, "gaussian_noise", 3, seed=1).equal(corrupt(grey, "gaussian_noise", 3, seed=2))


def test_corrupt_keeps_unchanged_pixels_regression(images):
    # Regression: truncating v / 255 * 255 turned some unchanged pixels v into v - 1 (float rounding).
    constant = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1).expand(256, 3, 4, 4).contiguous()
    assert corrupt(constant, "contrast", 5).equal(constant)  # a flat image has no contrast to lose
    assert corrupt(constant, "gaussian_blur", 5).equal(constant)


def test_severity_increases_the_damage(images):
    for name in CORRUPTIONS:
        damage = [float((corrupt(images, name, s).double() - images.double()).abs().mean()) for s in range(1, 6)]
        assert damage == sorted(damage), name


def test_kernel_and_bad_arguments(images):
    k = gaussian_kernel(1.0)
    assert k.numel() == 9 and abs(float(k.sum()) - 1) < 1e-15 and k.argmax() == 4
    with pytest.raises(ValueError, match="name: expected one of"):
        corrupt(images, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "contrast", 6)
    with pytest.raises(TypeError, match="uint8"):
        corrupt(images.float(), "contrast", 1)
