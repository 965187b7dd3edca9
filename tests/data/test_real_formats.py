"""Real datasets read from tiny files written in each official format (nothing is downloaded)."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from scipy.io import savemat

from caltrain import data
from caltrain.data import files as data_files


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: a download attempt behaves as offline."""

    def offline(url, *args, **kwargs):
        raise FileNotFoundError(f"offline in tests: {url}")

    for module in ("caltrain.data.cifar", "caltrain.data.svhn"):
        monkeypatch.setattr(f"{module}.download", offline)


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def write_cifar10(root, rng, per_batch=4, test=3):
    """The official layout: a pickled dict with bytes keys per batch, data uint8 [n, 3072] (RGB planes)."""
    batches = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n).tolist()
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x, b"filenames": [b"f"] * n}
        _pickle(root / "cifar-10-batches-py" / name, batch)
        batches[name] = (x, y)
    return batches


def write_svhn(root, rng, n_train=12, n_test=5):
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 10 means the digit 0
        (root / "svhn").mkdir(parents=True, exist_ok=True)
        savemat(root / "svhn" / f"{part}_32x32.mat", {"X": x, "y": y})
        out[part] = (x, y)
    return out


def test_cifar10_reads_the_pickled_batches(tmp_path, rng):
    batches = write_cifar10(tmp_path, rng)
    ds = data.create("cifar10", root=tmp_path, val_size=5)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 3)
    x_all = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    y_all = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    train_val = torch.cat([ds.train.x, ds.val.x]).numpy()
    assert sorted(map(bytes, train_val)) == sorted(map(bytes, x_all))  # a partition of the 20 images
    first = ds.train.x[0].numpy()
    j = [k for k in range(20) if np.array_equal(x_all[k], first)][0]
    assert ds.train.y[0] == y_all[j]
    assert np.array_equal(ds.test.x.numpy(), batches["test_batch"][0].reshape(-1, 3, 32, 32))
    assert ds.num_classes == 10 and ds.train.augment == ("crop", "flip") and ds.ood_names == ()


def test_cifar100_reads_fine_labels(tmp_path, rng):
    for name, n in (("train", 6), ("test", 2)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        _pickle(tmp_path / "cifar-100-python" / name, {b"data": x, b"fine_labels": [99] * n, b"coarse_labels": [1] * n})
    ds = data.create("cifar100", root=tmp_path, val_size=2)
    assert ds.num_classes == 100 and set(ds.train.y.tolist()) == {99} and len(ds.train) == 4


def test_cifar_refuses_a_pickle_that_is_not_data(tmp_path, rng):
    write_cifar10(tmp_path, rng)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    _pickle(tmp_path / "cifar-10-batches-py" / "data_batch_1", {b"data": Exploit(), b"labels": []})
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        data.create("cifar10", root=tmp_path, val_size=2)


def test_missing_files_say_where_to_put_them(tmp_path):
    expected = r"dataset 'cifar10': missing .*cifar-10-batches-py/data_batch_1.*cifar-10-python.tar.gz"
    with pytest.raises(FileNotFoundError, match=expected):
        data.create("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"svhn/train_32x32.mat.*ufldl"):
        data.create("svhn", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"medmnist/pathmnist.npz.*python -m medmnist download"):
        data.create("medmnist", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tiny-imagenet-200/wnids.txt.*tiny-imagenet-200.zip"):
        data.create("tinyimagenet", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10-C/gaussian_noise.npy.*zenodo"):
        data.create("cifar10c", root=tmp_path)


def test_svhn_maps_label_10_to_digit_0_and_pairs_with_cifar10(tmp_path, rng):
    mats = write_svhn(tmp_path, rng)
    write_cifar10(tmp_path, rng)
    ds = data.create("svhn", root=tmp_path, val_size=2, ood="cifar10")
    x_test, y_test = mats["test"]
    assert np.array_equal(ds.test.x.numpy(), x_test.transpose(3, 2, 0, 1))
    assert ds.test.y.tolist() == [int(v) % 10 for v in y_test.ravel()] and ds.train.augment == ("crop",)
    assert ds.ood()["cifar10"].x.shape == (3, 3, 32, 32)
    cifar = data.create("cifar10", root=tmp_path, val_size=2, ood="svhn")
    svhn_ood = cifar.ood("svhn")["svhn"]
    assert svhn_ood.x.equal(ds.test.x) and bool((svhn_ood.y == data.NO_LABEL).all())


def test_explicit_ood_request_fails_early_when_files_are_missing(tmp_path, rng):
    write_cifar10(tmp_path, rng)
    with pytest.raises(FileNotFoundError, match="svhn"):
        data.create("cifar10", root=tmp_path, val_size=2, ood=["svhn"])


def write_cifar10c(root, rng, per_severity=3, corruptions=("gaussian_noise", "fog")):
    folder = root / "CIFAR-10-C"
    folder.mkdir(parents=True)
    labels = rng.integers(0, 10, 5 * per_severity)
    np.save(folder / "labels.npy", labels)
    arrays = {}
    for c in corruptions:
        arrays[c] = rng.integers(0, 256, (5 * per_severity, 32, 32, 3), dtype=np.uint8)
        np.save(folder / f"{c}.npy", arrays[c])
    return arrays, labels


def test_cifar10c_test_split_and_ood_pairing(tmp_path, rng):
    write_cifar10(tmp_path, rng)
    arrays, labels = write_cifar10c(tmp_path, rng)
    ds = data.create("cifar10c", root=tmp_path, val_size=5, corruption="fog", severity=2)
    assert np.array_equal(ds.test.x.numpy(), arrays["fog"][3:6].transpose(0, 3, 1, 2))
    assert ds.test.y.tolist() == labels[3:6].tolist() and len(ds.train) == 15
    cifar = data.create("cifar10", root=tmp_path, val_size=5, ood=["cifar10c-gaussian_noise-5"])
    ood = cifar.ood()["cifar10c-gaussian_noise-5"]
    assert np.array_equal(ood.x.numpy(), arrays["gaussian_noise"][12:15].transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="corruption"):
        data.create("cifar10c", root=tmp_path, corruption="rain")


def test_medmnist_grey_and_colour_subsets(tmp_path, rng):
    folder = tmp_path / "medmnist"
    folder.mkdir()
    for subset, shape in (("pathmnist", (28, 28, 3)), ("breastmnist", (28, 28))):
        arrays = {}
        for part, n in (("train", 6), ("val", 2), ("test", 3)):
            arrays[f"{part}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            arrays[f"{part}_labels"] = rng.integers(0, 2, (n, 1))
        np.savez(folder / f"{subset}.npz", **arrays)
        ds = data.create("medmnist", root=tmp_path, subset=subset)
        channels = 3 if len(shape) == 3 else 1
        assert ds.input_shape == (channels, 28, 28) and (len(ds.train), len(ds.val), len(ds.test)) == (6, 2, 3)
        expected = arrays["test_images"] if channels == 1 else arrays["test_images"].transpose(0, 3, 1, 2)
        assert np.array_equal(ds.test.x.numpy().reshape(expected.shape), expected)
        assert ds.test.y.tolist() == arrays["test_labels"].ravel().tolist()
    assert data.create("medmnist", root=tmp_path, subset="pathmnist").num_classes == 9
    with pytest.raises(ValueError, match="multi-label"):
        data.create("medmnist", root=tmp_path, subset="chestmnist")
    with pytest.raises(ValueError, match="subset: expected one of"):
        data.create("medmnist", root=tmp_path, subset="nodulemnist3d")


def test_tinyimagenet_decodes_the_folders_once_and_caches(tmp_path, rng):
    Image = pytest.importorskip("PIL.Image", reason="decoding the Tiny-ImageNet JPEGs needs Pillow")
    folder = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    (folder).mkdir()
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    expected = {}
    for wnid in wnids:
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        for k in range(3):
            path = images / f"{wnid}_{k}.JPEG"
            mode = "L" if k == 0 else "RGB"  # Tiny-ImageNet has some greyscale JPEGs
            pixels = rng.integers(0, 256, (64, 64, 3) if mode == "RGB" else (64, 64), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(path)
            expected[path.name] = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
    (folder / "val" / "images").mkdir(parents=True)
    lines = []
    for k, wnid in enumerate(wnids * 2):
        name = f"val_{k}.JPEG"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "val" / "images" / name)
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")

    ds = data.create("tinyimagenet", root=tmp_path, val_size=2)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4, 2, 4) and ds.input_shape == (3, 64, 64)
    assert ds.test.y.tolist() == [1, 0, 1, 0]  # classes in sorted id order: n01 -> 0, n02 -> 1
    decoded = torch.cat([ds.train.x, ds.val.x]).numpy()
    assert sorted(map(bytes, decoded)) == sorted(map(bytes, expected.values()))
    assert (folder / "caltrain-uint8.npz").exists()
    for path in folder.rglob("*.JPEG"):
        path.unlink()
    again = data.create("tinyimagenet", root=tmp_path, val_size=2)  # from the cache
    assert again.train.x.equal(ds.train.x) and again.test.y.equal(ds.test.y)


def _tar_gz(path, name, payload):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    path.write_bytes(buffer.getvalue())


def test_download_checks_md5_and_extracts(tmp_path):
    source = tmp_path / "src" / "archive.tar.gz"
    source.parent.mkdir()
    _tar_gz(source, "folder/file.txt", b"hello")
    md5 = data_files.md5sum(source)
    dest = tmp_path / "root" / "archive.tar.gz"
    data_files.download(source.as_uri(), dest, md5=md5, extract_to=tmp_path / "root")
    assert (tmp_path / "root" / "folder" / "file.txt").read_bytes() == b"hello"
    bad = tmp_path / "other" / "archive.tar.gz"
    with pytest.raises(ValueError, match="MD5"):
        data_files.download(source.as_uri(), bad, md5="0" * 32)
    assert not bad.exists() and not list(bad.parent.glob(".*"))  # no partial file left behind
    with pytest.raises(FileNotFoundError, match="could not download"):
        data_files.download((tmp_path / "missing.tar.gz").as_uri(), bad, md5=md5)
