"""Joint augmentation of images and masks: the same random crop / flip / rot90, on whole batches."""

import pytest
import torch

from caltrain import data
from caltrain.data.augment import augment_pair, rot90
from caltrain.data.splits import Split


def _mask_images(n=16, size=12, seed=0):
    """Images whose content equals their mask (an asymmetric blob per image)."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 1, size, size, generator=g) < 0.3).to(torch.uint8)
    mask[:, :, 1:4, 1:6] = 1  # an asymmetric block: any flip or rotation moves it
    return mask.expand(n, 3, size, size).mul(255).contiguous(), mask


def test_rot90_matches_torch_per_sample():
    x = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 1, 3, 3)
    out = rot90(x, torch.tensor([1, 3]))
    assert out[0].equal(x[0].rot90(1, (-2, -1))) and out[1].equal(x[1].rot90(3, (-2, -1)))


def test_augment_pair_keeps_masks_aligned():
    image, mask = _mask_images()
    a, b = augment_pair(image, mask, "crop:2,flip,rot90", torch.Generator().manual_seed(1))
    assert a.shape == image.shape and b.shape == mask.shape
    assert a.equal(b.expand_as(a) * 255)
    assert not b.equal(mask)  # something moved


def test_loader_augments_images_and_masks_jointly():
    image, mask = _mask_images()
    split = Split(image, mask, augment=("crop", "flip", "rot90"))
    loader = data.make_loader(split, batch_size=5, shuffle=True, augment=True, seed=3)
    for epoch in range(2):
        loader.set_epoch(epoch)
        moved = 0
        for x, y, index in loader:
            assert y.dtype == torch.float32 and y.shape == (len(index), 1, 12, 12)
            assert torch.equal(x, y.expand_as(x))  # the image content (scaled to [0, 1]) is its mask
            moved += int((y != mask[index].float()).any())
        assert moved > 0


def test_loader_without_augmentation_yields_the_masks_and_is_reproducible():
    ds = data.create("synthetic_saliency", n_train=10, n_val=4, n_test=4, size=16)
    loader = data.make_loader(ds.train, batch_size=4, shuffle=True, augment=True, seed=0,
                              normalization=(ds.mean, ds.std))
    loader.set_epoch(1)
    first = [(x.clone(), y.clone()) for x, y, _ in loader]
    loader.set_epoch(1)
    assert all(a.equal(c) and b.equal(d) for (a, b), (c, d) in zip(first, [(x, y) for x, y, _ in loader]))
    plain = data.make_loader(ds.train, batch_size=4, shuffle=False, seed=0)
    y = torch.cat([y for _, y, _ in plain])
    assert y.equal(ds.train.y.float())


def test_non_resident_path_gathers_masks_too():
    image, mask = _mask_images(n=8)
    split = Split(image, mask)
    loader = data.make_loader(split, batch_size=3, shuffle=True, augment="flip,rot90", seed=0, resident=False,
                              num_workers=0)
    loader.set_epoch(0)
    for x, y, index in loader:
        assert torch.equal(x, y.expand_as(x))


def test_rot90_needs_square_images():
    x = torch.zeros(2, 1, 4, 6, dtype=torch.uint8)
    with pytest.raises(ValueError, match="square"):
        augment_pair(x, x, "rot90", torch.Generator())
