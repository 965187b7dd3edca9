"""``synthetic_saliency``: a dense binary task whose per-pixel posterior is known."""

import math

import pytest
import torch

from caltrain import data
from caltrain.data.seeding import make_generator
from caltrain.data.synthetic_saliency import saliency_split, signed_distance

SMALL = dict(n_train=24, n_val=8, n_test=12, size=16)
SCENE = dict(tau=(0.3, 3.0), contrast=(20.0, 80.0), noise=(4.0, 24.0), texture=12.0)


def test_shapes_task_and_determinism():
    ds = data.create("synthetic_saliency", seed=1, **SMALL)
    again = data.create("synthetic_saliency", seed=1, **SMALL)
    other = data.create("synthetic_saliency", seed=2, **SMALL)
    assert ds.task == "dense_binary" and ds.num_classes == 1 and ds.kind == "image"
    assert ds.input_shape == (3, 16, 16)
    for part, n in (("train", 24), ("val", 8), ("test", 12)):
        split = getattr(ds, part)
        assert split.dense and split.x.shape == (n, 3, 16, 16) and split.x.dtype == torch.uint8
        assert split.y.shape == (n, 1, 16, 16) and split.y.dtype == torch.uint8
        assert set(split.y.unique().tolist()) <= {0, 1}
        assert split.true_posterior.shape == (n, 1, 16, 16) and split.true_posterior.dtype == torch.float32
        tau = split.extra["tau"]
        assert tau.shape == (n,) and bool(((tau >= 0.3) & (tau <= 3.0)).all())
        assert split.x.equal(getattr(again, part).x) and split.y.equal(getattr(again, part).y)
        assert not split.x.equal(getattr(other, part).x)
    assert ds.options["size"] == 16 and ds.options["tau"] == (0.3, 3.0)


def test_masks_are_superlevel_sets_of_the_posterior():
    """y = 1[d + u > 0] with one u per image: in each image, every foreground pixel has a posterior at least
    that of every background pixel, and the posterior is Phi(d / tau) (0 < p < 1, with both labels present)."""
    split = saliency_split(64, 24, make_generator(0, "t"), **SCENE)
    p = split.true_posterior.flatten(1).double()
    y = split.y.flatten(1).bool()
    low_fg = torch.where(y, p, torch.full_like(p, 2.0)).min(1).values
    high_bg = torch.where(~y, p, torch.full_like(p, -1.0)).max(1).values
    assert bool((low_fg >= high_bg).all())
    assert 0.05 < float(y.double().mean()) < 0.6


def test_pooled_labels_match_the_posterior():
    """Pixels binned by their true posterior: the label frequency equals the mean posterior in each bin."""
    split = saliency_split(3000, 16, make_generator(1, "t"), **SCENE)
    p = split.true_posterior.flatten().double()
    y = split.y.flatten().double()
    bins = torch.clamp((p * 5).long(), max=4)
    assert abs(float(y.mean() - p.mean())) < 0.01
    for b in range(5):
        sel = bins == b
        assert abs(float(y[sel].mean() - p[sel].mean())) < 0.04, b


def test_posterior_is_phi_of_distance_over_tau():
    """Larger tau makes the posterior softer: at a fixed distance d the posterior is Phi(d / tau)."""
    split = saliency_split(200, 16, make_generator(2, "t"), **SCENE)
    p = split.true_posterior.double().clamp(1e-7, 1 - 1e-7)
    tau = split.extra["tau"].double().view(-1, 1, 1, 1)
    d = math.sqrt(2) * torch.special.erfinv(2 * p - 1) * tau  # d = tau * Phi^-1(p)
    assert float(d.abs().max()) < 16 * 1.5  # distances within the image, in pixels
    inside = (p > 0.5).flatten(1).any(1)
    assert bool(inside.all())  # every image has an object


def test_signed_distance_is_exact_for_discs_and_rectangles():
    centre = torch.tensor([[10.0, 10.0], [10.0, 10.0]])
    axes = torch.tensor([[4.0, 4.0], [6.0, 3.0]])
    d = signed_distance(torch.tensor([0, 2]), centre, axes, torch.zeros(2), 21)
    assert float(d[0, 0, 10, 10]) == pytest.approx(4.0)
    assert float(d[0, 0, 10, 17]) == pytest.approx(-3.0)
    assert float(d[0, 0, 13, 14]) == pytest.approx(-1.0)  # radius 5 from the centre
    assert float(d[1, 0, 10, 10]) == pytest.approx(3.0)  # min(6, 3) to the nearest side
    assert float(d[1, 0, 10, 18]) == pytest.approx(-2.0)  # 8 columns right, the side at 6
    assert float(d[1, 0, 17, 19]) == pytest.approx(-5.0)  # corner (13, 16): rows 4, cols 3 away
    ellipse = signed_distance(torch.tensor([1]), centre[:1], torch.tensor([[4.0, 4.0]]), torch.tensor([0.7]), 21)
    assert torch.allclose(ellipse, d[:1], atol=1e-5)  # a circular ellipse is a disc


def test_subset_keeps_tau_aligned():
    ds = data.create("synthetic_saliency", seed=0, **SMALL)
    idx = torch.tensor([5, 0, 3])
    sub = ds.train.subset(idx)
    assert sub.extra["tau"].equal(ds.train.extra["tau"][idx]) and sub.y.equal(ds.train.y[idx])
    assert sub.true_posterior.equal(ds.train.true_posterior[idx])


def test_ood_texture_only_has_empty_masks():
    ds = data.create("synthetic_saliency", seed=0, ood="all", **SMALL)
    assert ds.ood_names == ("texture_only", "uniform_noise")
    for name, split in ds.ood().items():
        assert split.x.shape == (12, 3, 16, 16) and split.x.dtype == torch.uint8, name
        assert split.y.shape == (12, 1, 16, 16) and int(split.y.sum()) == 0, name
        assert float(split.true_posterior.max()) == 0.0, name
    assert data.create("synthetic_saliency", **SMALL).ood_names == ("texture_only",)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(tau=(2.0, 1.0)), "tau: expected a range"),
        (dict(size=4), "size"),
        (dict(n_train=0), "n_train"),
        (dict(ood="nope"), "unknown OOD set"),
    ],
)
def test_bad_options_fail_clearly(options, match):
    with pytest.raises(ValueError, match=match):
        data.create("synthetic_saliency", **{**SMALL, **options})


def test_no_long_tailed_variant_of_a_dense_task():
    with pytest.raises(ValueError, match="classification only"):
        data.create("synthetic_saliency", imbalance_factor=10, **SMALL)


def test_split_and_dataset_validate_masks():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(TypeError, match="masks must be uint8"):
        data.Split(x, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="the images' H and W"):
        data.Split(x, torch.zeros(2, 1, 4, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="expected the masks' shape"):
        data.Split(x, torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="extra"):
        data.Split(x, torch.zeros(2, dtype=torch.int64), extra={"tau": torch.zeros(3)})
    ds = data.create("synthetic_saliency", **SMALL)
    from dataclasses import replace
    with pytest.raises(ValueError, match="expects masks"):
        replace(ds, train=data.Split(ds.train.x, torch.zeros(24, dtype=torch.int64)))
    with pytest.raises(ValueError, match="num_classes=1"):
        replace(ds, num_classes=2)
