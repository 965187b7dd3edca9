"""``data.check_available``: a cheap check of a real dataset's files, one message naming the folder and the fix."""

import pytest

from caltrain import data
from caltrain.utils.registry import UnknownNameError


def _assert_one_clear_message(err: str, dataset: str, root) -> None:
    assert err.startswith(f"dataset {dataset!r}: missing ")
    assert f"data folder searched: {root.resolve()}" in err
    assert "--set data.root=DIR" in err and "CALTRAIN_DATA_DIR" in err and "root=DIR" in err
    assert "--data-dir" not in err  # an option caltrain does not have


@pytest.mark.parametrize(
    "name, options, missing",
    [
        ("cifar10", {"download": False}, "cifar-10-batches-py/data_batch_1"),
        ("cifar100", {"download": False}, "cifar-100-python/train"),
        ("svhn", {"download": False}, "svhn/train_32x32.mat"),
        ("medmnist", {"subset": "bloodmnist", "size": 64}, "medmnist/bloodmnist_64.npz"),
        ("tinyimagenet", {}, "tiny-imagenet-200/wnids.txt"),
        ("cifar10c", {"corruption": "fog", "download": False}, "CIFAR-10-C/fog.npy"),
        ("saliency_folder", {}, "DUTS-TR/DUTS-TR-Image"),
        ("saliency_folder", {"test_dir": "ECSSD", "image_subdir": "images"}, "ECSSD/images"),
    ],
)
def test_missing_files_give_one_clear_message(tmp_path, name, options, missing):
    with pytest.raises(FileNotFoundError) as info:
        data.check_available(name, tmp_path, **options, train_size=100, imbalance_factor=10)  # others ignored
    _assert_one_clear_message(str(info.value), name, tmp_path)
    assert missing in str(info.value)


def test_present_files_pass_without_loading_them(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"")  # not even valid pickles: nothing is read
    data.check_available("cifar10", tmp_path, download=False)
    (tmp_path / "medmnist").mkdir()
    (tmp_path / "medmnist" / "pathmnist.npz").write_bytes(b"")
    data.check_available("medmnist", tmp_path)  # the default subset
    with pytest.raises(FileNotFoundError, match="medmnist/dermamnist.npz"):
        data.check_available("medmnist", tmp_path, subset="dermamnist")


def test_default_root_is_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CALTRAIN_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        data.check_available("svhn", download=False)
    _assert_one_clear_message(str(info.value), "svhn", tmp_path)


def test_embedded_sets_are_always_available_and_names_are_checked(tmp_path):
    for name in ("synthetic", "synthetic_image", "digits", "digits_flat"):
        data.check_available(name, tmp_path / "nothing")
    with pytest.raises(UnknownNameError, match="Did you mean 'cifar10'"):
        data.check_available("cifar1O", tmp_path)


def test_every_real_dataset_answers():
    assert set(data.FILE_CHECKS.names()) == {
        "cifar10", "cifar100", "cifar10c", "svhn", "tinyimagenet", "medmnist", "saliency_folder"
    }
