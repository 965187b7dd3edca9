"""``saliency_folder``: DUTS-style image / mask folders, built here as tiny PNG files."""

import pytest
import torch

from caltrain import data

Image = pytest.importorskip("PIL.Image")
np = pytest.importorskip("numpy")


def _write(folder, name, array, ext=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / f"{name}{ext}")


def _make_split(root, split, n, *, height=20, width=24, seed=0, image_ext=".png"):
    """``n`` images whose red channel is their mask (values 0/255, with a 127/128 edge) and a few masks."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        mask = np.zeros((height, width), dtype=np.uint8)
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[top : top + height // 2, left : left + width // 2] = 255
        mask[0, 0], mask[0, 1] = 127, 128  # binarised at 128: 0 and 1
        image = np.stack([mask, rng.integers(0, 256, mask.shape, dtype=np.uint8), np.zeros_like(mask)], axis=-1)
        _write(root / split / f"{split}-Image", f"img_{i:03d}", image, image_ext)
        _write(root / split / f"{split}-Mask", f"img_{i:03d}", mask)


def test_loads_a_tiny_duts_layout(tmp_path):
    _make_split(tmp_path, "DUTS-TR", 7)
    _make_split(tmp_path, "DUTS-TE", 3, seed=1)
    data.check_available("saliency_folder", tmp_path, image_ext=".png")
    ds = data.create("saliency_folder", root=tmp_path, image_ext=".png", size=20, val_size=2, seed=0)
    assert ds.task == "dense_binary" and ds.num_classes == 1 and ds.input_shape == (3, 20, 20)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (5, 2, 3)
    for split in ds.splits().values():
        assert split.y.dtype == torch.uint8 and split.y.shape[1:] == (1, 20, 20)
        assert set(split.y.unique().tolist()) <= {0, 1}
        assert int(split.y[:, 0, 0, 0].sum()) == 0  # 127 -> background
    # same seed, same split; the test split in sorted file order: its first image is img_000 of DUTS-TE
    again = data.create("saliency_folder", root=tmp_path, image_ext=".png", size=20, val_size=2, seed=0)
    assert ds.train.y.equal(again.train.y) and ds.val.x.equal(again.val.x)
    first = np.asarray(Image.open(tmp_path / "DUTS-TE" / "DUTS-TE-Mask" / "img_000.png"))
    assert first[0, 1] == 128


def test_masks_follow_their_images_through_the_resize(tmp_path):
    _make_split(tmp_path, "DUTS-TR", 4, height=32, width=32)
    _make_split(tmp_path, "DUTS-TE", 2, height=32, width=32, seed=3)
    ds = data.create("saliency_folder", root=tmp_path, image_ext=".png", size=16, val_size=1)
    for split in ds.splits().values():
        red = split.x[:, :1].float() / 255
        # bilinear (antialiased) image and nearest mask agree away from the edges of the block
        assert float(((red > 0.5).to(torch.uint8) != split.y).float().mean()) < 0.15


def test_other_layouts_by_options(tmp_path):
    for split in ("train", "ECSSD"):
        rng = np.random.default_rng(0)
        for i in range(3):
            mask = (rng.random((10, 10)) > 0.5).astype(np.uint8) * 255
            _write(tmp_path / split / "images", f"{i}", np.stack([mask] * 3, -1), ".jpg")
            _write(tmp_path / split / "ground_truth_mask", f"{i}", mask)
    ds = data.create("saliency_folder", root=tmp_path, train_dir="train", test_dir="ECSSD", image_subdir="images",
                     mask_subdir="ground_truth_mask", size=10, val_size=1)
    assert len(ds.test) == 3 and ds.test.y.shape == (3, 1, 10, 10)
    assert torch.equal(ds.test.y, torch.from_numpy(
        np.stack([np.asarray(Image.open(tmp_path / "ECSSD" / "ground_truth_mask" / f"{i}.png")) for i in range(3)])
    )[:, None].ge(128).to(torch.uint8))


def test_missing_mask_names_the_file(tmp_path):
    _make_split(tmp_path, "DUTS-TR", 3)
    _make_split(tmp_path, "DUTS-TE", 2)
    (tmp_path / "DUTS-TR" / "DUTS-TR-Mask" / "img_001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image .*img_001\.png has no mask .*DUTS-TR-Mask.img_001\.png"):
        data.create("saliency_folder", root=tmp_path, image_ext=".png", size=8, val_size=1)


def test_extra_mask_names_the_file(tmp_path):
    _make_split(tmp_path, "DUTS-TR", 3)
    _make_split(tmp_path, "DUTS-TE", 2)
    _write(tmp_path / "DUTS-TE" / "DUTS-TE-Mask", "stray", np.zeros((4, 4), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"mask .*stray\.png has no image"):
        data.create("saliency_folder", root=tmp_path, image_ext=".png", size=8, val_size=1)


def test_mismatched_sizes_name_the_file(tmp_path):
    _make_split(tmp_path, "DUTS-TR", 3)
    _make_split(tmp_path, "DUTS-TE", 2)
    _write(tmp_path / "DUTS-TR" / "DUTS-TR-Mask", "img_002", np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match=r"img_002\.png is \(20, 24\) but its mask .*img_002\.png is \(5, 5\)"):
        data.create("saliency_folder", root=tmp_path, image_ext=".png", size=8, val_size=1)


def test_missing_folder_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.create("saliency_folder", root=tmp_path)
    message = str(info.value)
    assert "DUTS-TR-Image" in message and "--set data.root=DIR" in message and str(tmp_path.resolve()) in message
