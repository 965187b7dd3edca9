"""The scikit-learn digits as images and as features."""

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from caltrain import data


def test_images_are_the_sklearn_pixels_rescaled():
    ds = data.create("digits", label_noise=0.0)
    bunch = load_digits()
    all_x = torch.cat([ds.train.x, ds.val.x, ds.test.x]).numpy()
    all_y = torch.cat([ds.train.y, ds.val.y, ds.test.y]).numpy()
    assert all_x.shape == (1797, 1, 8, 8) and all_x.dtype == np.uint8
    # Documented: uint8 on the 0..255 scale, round(v * 255 / 16) of sklearn's 0..16 counts.
    expected = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    # The splits are a permutation of the whole set: the (image, label) pairs are exactly sklearn's, as a multiset.
    got = Counter((img.tobytes(), int(y)) for img, y in zip(all_x, all_y))
    want = Counter((img.tobytes(), int(y)) for img, y in zip(expected, bunch.target))
    assert got == want
    assert len(ds.train) == 1000 and len(ds.test) == 500 and len(ds.val) == 297
    assert ds.train.augment == () and ds.input_shape == (1, 8, 8)


def test_default_label_noise_rate_and_clean_option():
    noisy = data.create("digits")
    clean = data.create("digits", label_noise=0.0)
    assert noisy.train.x.equal(clean.train.x)  # same images and splits
    wrong = torch.cat([noisy.train.y != clean.train.y, noisy.val.y != clean.val.y, noisy.test.y != clean.test.y])
    assert 0.05 < float(wrong.double().mean()) < 0.13  # eta * (K - 1) / K = 0.09 in expectation


def test_flat_is_the_images_on_the_unit_scale():
    img, flat = data.create("digits"), data.create("digits_flat")
    assert flat.train.x.shape == (1000, 64) and flat.train.x.dtype == torch.float32 and flat.kind == "features"
    assert torch.allclose(flat.train.x, img.train.x.reshape(1000, 64).float() / 255.0)
    assert flat.train.y.equal(img.train.y)
    ood = flat.ood("gaussian_blur-2")["gaussian_blur-2"]
    assert torch.allclose(ood.x, img.ood("gaussian_blur-2")["gaussian_blur-2"].x.reshape(-1, 64).float() / 255.0)


def test_ood_sets():
    ds = data.create("digits")
    assert len(ds.ood_names) == 16
    noise = ds.ood("uniform_noise")["uniform_noise"]
    assert noise.x.shape == (500, 1, 8, 8) and bool((noise.y == data.NO_LABEL).all())
    assert float(noise.x.double().mean()) == pytest.approx(127.5, abs=3)


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="ask for"):
        data.create("digits", train_size=1500, test_size=500)
