"""Split / DatasetSplits validation, seeded partitions, channel statistics."""

import numpy as np
import pytest
import torch

from caltrain.data import DatasetSplits, Split
from caltrain.data.seeding import derive_seed, make_generator
from caltrain.data.splits import channel_stats, random_partition


def _images(n=6, c=3, hw=4):
    return torch.randint(0, 256, (n, c, hw, hw), dtype=torch.uint8)


def test_split_len_kind_and_subset_renumbers():
    s = Split(_images(5), torch.arange(5), torch.full((5, 5), 0.2, dtype=torch.float64))
    assert len(s) == 5 and s.kind == "image"
    sub = s.subset(torch.tensor([3, 1]))
    assert sub.y.tolist() == [3, 1] and sub.x[0].equal(s.x[3]) and sub.true_posterior.shape == (2, 5)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (torch.zeros(3, 3, 2, 2), torch.zeros(3, dtype=torch.int64), "images must be uint8"),
        (torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.int64), "features must be float32"),
        (torch.zeros(3, 2), torch.zeros(3, dtype=torch.int32), "int64"),
        (torch.zeros(3, 2), torch.zeros(4, dtype=torch.int64), "same number of samples"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.int64), r"\[N, D\]"),
        (torch.tensor([[0.0], [float("nan")]]), torch.zeros(2, dtype=torch.int64), "NaN"),
    ],
)
def test_split_rejects_bad_inputs(x, y, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Split(x, y)


def test_split_rejects_unknown_augmentation():
    with pytest.raises(ValueError, match="augment: expected one of"):
        Split(_images(2), torch.zeros(2, dtype=torch.int64), augment=("rotate",))


def _ds(**overrides):
    s = Split(_images(4), torch.tensor([0, 1, 0, 1]))
    kwargs = dict(
        name="t", train=s, val=s, test=s, num_classes=2, input_shape=(3, 4, 4),
        mean=(0.5,) * 3, std=(0.2,) * 3, kind="image",
    )  # fmt: skip
    kwargs.update(overrides)
    return DatasetSplits(**kwargs)


def test_dataset_splits_checks_shapes_and_stats():
    with pytest.raises(ValueError, match="expected inputs of shape"):
        _ds(input_shape=(3, 5, 5))
    with pytest.raises(ValueError, match="expected 3 values"):
        _ds(mean=(0.5,))
    with pytest.raises(ValueError, match="kind"):
        _ds(kind="text")


def test_ood_is_lazy_cached_and_names_are_checked():
    calls = []

    def source():
        calls.append(1)
        return Split(_images(2), torch.full((2,), -1))

    ds = _ds(ood_sources={"noise": source})
    assert ds.ood_names == ("noise",) and calls == []
    first = ds.ood()["noise"]
    assert ds.ood("noise")["noise"] is first and len(calls) == 1
    with pytest.raises(ValueError, match="unknown OOD set 'far'.*valid names: noise"):
        ds.ood("far")
    assert _ds().ood() == {}


def test_random_partition_disjoint_sizes_and_deterministic():
    a = random_partition(100, [10, 20, None], seed=3)
    assert [len(p) for p in a] == [10, 20, 70]
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert all(x.equal(y) for x, y in zip(a, random_partition(100, [10, 20, None], seed=3)))
    assert not a[0].equal(random_partition(100, [10, 20, None], seed=4)[0])


def test_random_partition_first_part_is_stable_when_later_sizes_change():
    # Regression: growing the training split must not change the validation (first) part.
    assert random_partition(100, [10, 30], seed=0)[0].equal(random_partition(100, [10, None], seed=0)[0])


@pytest.mark.parametrize("sizes, match", [([60, 50], "only 100"), ([None, None], "at most one"), ([-1, None], ">= 0")])
def test_random_partition_rejects_bad_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        random_partition(100, sizes, seed=0)


def test_channel_stats_match_numpy_for_images_and_features(rng):
    x = torch.from_numpy(rng.integers(0, 256, (20, 3, 5, 5), dtype=np.uint8))
    mean, std = channel_stats(x)
    ref = x.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-10)
    feats = torch.from_numpy(rng.normal(2.0, 3.0, (50, 4)).astype(np.float32))
    feats[:, 1] = 7.0  # a constant feature gets std 1
    mean, std = channel_stats(feats)
    np.testing.assert_allclose(mean, feats.numpy().astype(np.float64).mean(0), rtol=1e-6)
    assert std[1] == 1.0 and abs(std[0] - feats.numpy()[:, 0].astype(np.float64).std()) < 1e-5


def test_derive_seed_is_a_pure_function_of_its_parts():
    assert derive_seed(0, "split") == derive_seed(0, "split")
    assert len({derive_seed(s, "split") for s in range(50)}) == 50
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert torch.rand(3, generator=make_generator(5, "x")).equal(torch.rand(3, generator=make_generator(5, "x")))
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(-1)
