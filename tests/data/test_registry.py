"""The dataset registry: names, errors, and properties of every embedded dataset."""

import pytest
import torch

from caltrain import data
from caltrain.utils.registry import UnknownNameError

#: Small configurations of the datasets that need no files.
EMBEDDED = {
    "synthetic": dict(train_size=120, val_size=80, test_size=60),
    "synthetic_image": dict(train_size=100, val_size=60, test_size=30),
    "digits": {},
    "digits_flat": {},
    "synthetic_saliency": dict(n_train=12, n_val=6, n_test=6, size=16),
}
#: Embedded datasets that pose a dense binary task (no long-tailed variant).
DENSE = {"synthetic_saliency"}
REAL = {"cifar10", "cifar100", "cifar10c", "svhn", "tinyimagenet", "medmnist", "saliency_folder"}


def test_names_cover_the_issue():
    assert set(data.names()) == set(EMBEDDED) | REAL


def test_unknown_name_and_option_list_the_valid_ones():
    expected = "unknown dataset 'synthtic'.*Did you mean 'synthetic'.*Valid names: cifar10"
    with pytest.raises(UnknownNameError, match=expected):
        data.create("synthtic")
    expected = r"unknown parameter\(s\) 'sepration'; valid parameters: num_classes, dim, separation"
    with pytest.raises(TypeError, match=expected):
        data.create("synthetic", sepration=3.0)


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_dataset_properties(name):
    ds = data.create(name, seed=3, **EMBEDDED[name])
    again = data.create(name, seed=3, **EMBEDDED[name])
    assert ds.name == name and ds.options["seed"] == 3
    assert set(data.DATASETS.defaults(name)) - {"root"} <= set(ds.options)  # every option, defaults included
    for part, split in ds.splits().items():
        assert split.x.equal(getattr(again, part).x) and split.y.equal(getattr(again, part).y)
        assert tuple(split.x.shape[1:]) == ds.input_shape
        assert int(split.y.min()) >= 0 and int(split.y.max()) < max(ds.num_classes, 2)  # masks: {0, 1}
        if split.true_posterior is not None and split.dense:
            assert split.true_posterior.shape == split.y.shape and ds.task == "dense_binary"
            assert 0 <= float(split.true_posterior.min()) <= float(split.true_posterior.max()) <= 1
        elif split.true_posterior is not None:
            assert split.true_posterior.shape == (len(split), ds.num_classes)
            assert torch.allclose(split.true_posterior.sum(1), torch.ones(len(split), dtype=torch.float64))
    assert len(ds.mean) == len(ds.std) == ds.input_shape[0] and min(ds.std) > 0
    for ood_name, split in ds.ood().items():
        assert tuple(split.x.shape[1:]) == ds.input_shape and split.x.dtype == ds.test.x.dtype, ood_name
        y = split.y.long()
        assert bool(((y >= 0) & (y < max(ds.num_classes, 2)) | (y == data.NO_LABEL)).all())


@pytest.mark.parametrize("name", sorted(set(EMBEDDED) - DENSE))
def test_embedded_dataset_takes_a_long_tailed_variant(name):
    ds = data.create(name, imbalance_factor=5, **EMBEDDED[name])
    counts = torch.bincount(ds.train.y, minlength=ds.num_classes)
    assert int(counts[0]) >= int(counts[-1]) * 4 and int(counts[-1]) >= 1


def test_long_tail_of_a_split_missing_a_class_names_the_split():
    expected = r"imbalance_factor: the validation split: labels: class\(es\) \[.*\] have no sample"
    with pytest.raises(ValueError, match=expected):
        data.create("synthetic", train_size=200, val_size=5, test_size=10, imbalance_factor=10)


def test_root_default_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CALTRAIN_DATA_DIR", str(tmp_path))
    assert data.default_root() == tmp_path
    monkeypatch.delenv("CALTRAIN_DATA_DIR")
    assert str(data.default_root()) == "data"
