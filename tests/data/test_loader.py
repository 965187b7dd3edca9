"""The device-resident loader: coverage, determinism per (seed, epoch, rank), augmentation, sharding."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from caltrain import data
from caltrain.data import Split, make_loader
from caltrain.data.augment import crop_flip, cutout, parse_augment


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (23, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(23) % 4)


def epochs(loader, which):
    out = []
    for e in which:
        loader.set_epoch(e)
        out.append(list(loader))
    return out


def test_an_epoch_visits_every_sample_once(images):
    loader = make_loader(images, batch_size=5, shuffle=True, seed=0)
    (batches,) = epochs(loader, [0])
    assert len(loader) == len(batches) == 5 and [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    index = torch.cat([b[2] for b in batches])
    assert sorted(index.tolist()) == list(range(23))
    for x, y, i in batches:
        assert y.equal(images.y[i]) and x.dtype == torch.float32 and i.dtype == torch.int64


def test_unshuffled_order_and_drop_last(images):
    loader = make_loader(images, batch_size=5, shuffle=False, drop_last=True)
    (batches,) = epochs(loader, [0])
    assert len(loader) == 4 and torch.cat([b[2] for b in batches]).tolist() == list(range(20))


def test_batches_are_a_pure_function_of_seed_and_epoch(images):
    # The resume property: a fresh loader set to epoch 2 yields exactly the uninterrupted run's epoch 2.
    kw = dict(batch_size=6, shuffle=True, augment="crop,flip,cutout", seed=7)
    run = epochs(make_loader(images, **kw), [0, 1, 2])
    resumed = epochs(make_loader(images, **kw), [2])[0]
    for (x, y, i), (x2, y2, i2) in zip(run[2], resumed):
        assert x.equal(x2) and y.equal(y2) and i.equal(i2)
    first = lambda ep: torch.cat([b[2] for b in ep])  # noqa: E731
    assert not first(run[0]).equal(first(run[1]))
    other_seed = epochs(make_loader(images, **{**kw, "seed": 8}), [2])[0]
    assert not first(run[2]).equal(first(other_seed))


def test_normalisation_matches_numpy(images):
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    loader = make_loader(images, batch_size=23, shuffle=True, normalization=(mean, std))
    ((x, _, i),) = epochs(loader, [0])[0]
    ref = (images.x[i].numpy() / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-5, atol=1e-5)
    feats = Split(torch.randn(10, 3), torch.zeros(10, dtype=torch.int64))
    ((xf, _, jf),) = epochs(make_loader(feats, batch_size=10, shuffle=True, normalization=(mean, std)), [0])[0]
    np.testing.assert_allclose(xf.numpy(), (feats.x[jf].numpy() - np.array(mean)) / np.array(std), rtol=1e-5, atol=1e-6)


def _crops(img, pad):
    """Every crop (and its mirror) of ``img`` zero-padded by ``pad``: the torchvision RandomCrop+Flip support."""
    padded = F.pad(img, (pad,) * 4)
    h, w = img.shape[-2:]
    out = []
    for dy, dx in itertools.product(range(2 * pad + 1), repeat=2):
        crop = padded[:, dy : dy + h, dx : dx + w]
        out += [(dy, dx, False, crop), (dy, dx, True, crop.flip(-1))]
    return out


def test_loader_crop_flip_outputs_are_crops_of_their_source(images):
    loader = make_loader(images, batch_size=23, shuffle=True, augment=True, seed=3)  # True: crop + flip
    ((x, _, i),) = epochs(loader, [0])[0]
    raw = torch.round(x * 255.0).to(torch.uint8)  # no normalisation: back to pixels
    seen = set()
    for out, idx in zip(raw, i):
        matches = [(dy, dx, f) for dy, dx, f, c in _crops(images.x[idx], 1) if c.equal(out)]
        assert matches, "output is not a crop/flip of its source"
        seen.update(matches)
    assert len({m[2] for m in seen}) == 2 and len({m[:2] for m in seen}) > 3  # both flips, several offsets


def test_crop_flip_matches_per_sample_reference(rng):
    x = torch.from_numpy(rng.integers(0, 256, (9, 2, 5, 7), dtype=np.uint8))
    dy, dx = torch.from_numpy(rng.integers(0, 7, 9)), torch.from_numpy(rng.integers(0, 7, 9))
    flip = torch.from_numpy(rng.random(9) < 0.5)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (3, 3)))
    ref = np.stack([padded[b, :, dy[b] : dy[b] + 5, dx[b] : dx[b] + 7] for b in range(9)])
    ref = np.where(flip.numpy()[:, None, None, None], ref[..., ::-1], ref)
    assert np.array_equal(crop_flip(x, dy, dx, flip, pad=3).numpy(), ref)
    flipped_only = np.where(flip.numpy()[:, None, None, None], x.numpy()[..., ::-1], x.numpy())
    assert np.array_equal(crop_flip(x, None, None, flip, pad=0).numpy(), flipped_only)


def test_cutout_matches_devries_taylor_reference(rng):
    x = torch.ones(6, 3, 10, 10)
    cy, cx = torch.from_numpy(rng.integers(0, 10, 6)), torch.from_numpy(rng.integers(0, 10, 6))
    out = cutout(x.clone(), cy, cx, size=4).numpy()
    for b in range(6):  # Cutout.__call__ of the authors' code, with the centre given
        mask = np.ones((10, 10))
        y, x_ = int(cy[b]), int(cx[b])
        y1, y2 = np.clip(y - 2, 0, 10), np.clip(y + 2, 0, 10)
        x1, x2 = np.clip(x_ - 2, 0, 10), np.clip(x_ + 2, 0, 10)
        mask[y1:y2, x1:x2] = 0.0
        assert np.array_equal(out[b], np.broadcast_to(mask, (3, 10, 10)))


def test_cutout_sets_normalised_pixels_to_zero_after_normalisation(images):
    norm = ((0.5,) * 3, (0.1,) * 3)
    loader = make_loader(images, batch_size=23, shuffle=False, augment="cutout:4", normalization=norm)
    ((x, _, i),) = epochs(loader, [0])[0]
    zero = (x == 0).all(dim=1)  # a cut square is 0 in every channel
    assert int(zero.flatten(1).sum(1).max()) <= 16 and int(zero.flatten(1).sum(1).min()) >= 4


def test_standard_augmentation_follows_the_dataset():
    digits = data.create("digits")
    plain = make_loader(digits.train, batch_size=50, shuffle=False)
    auto = make_loader(digits.train, batch_size=50, shuffle=False, augment=True)
    assert all(a[0].equal(b[0]) for a, b in zip(epochs(plain, [0])[0], epochs(auto, [0])[0]))  # digits: none
    feats = Split(torch.randn(4, 2), torch.zeros(4, dtype=torch.int64))
    assert make_loader(feats, batch_size=2, shuffle=False, augment=True).ops == ()
    assert [op.name for op in parse_augment("crop:2, flip", 32)] == ["crop", "flip"]


def test_ranks_shard_one_shared_permutation(images):
    shards = []
    for rank in range(3):
        loader = make_loader(images, batch_size=4, shuffle=True, seed=1, rank=rank, world_size=3)
        assert len(loader) == 2  # ceil(23 / 3) = 8 samples, 2 batches
        shards.append(torch.cat([b[2] for b in epochs(loader, [5])[0]]))
    union = torch.cat(shards)
    assert len(union) == 24 and set(union.tolist()) == set(range(23))  # one sample repeated as padding


def test_dataloader_path_gives_the_same_batches(images):
    kw = dict(batch_size=6, shuffle=True, augment="crop,flip", seed=2, normalization=((0.5,) * 3, (0.2,) * 3))
    resident = epochs(make_loader(images, **kw), [1])[0]
    streamed = epochs(make_loader(images, resident=False, num_workers=0, **kw), [1])[0]
    assert len(resident) == len(streamed)
    for a, b in zip(resident, streamed):
        assert all(u.equal(v) for u, v in zip(a, b))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(rank=3, world_size=3), ValueError, "rank"),
        (dict(augment="rotate"), ValueError, "augment: expected one of"),
        (dict(augment="flip:2"), ValueError, "takes no parameter"),
        (dict(augment="crop,crop"), ValueError, "once"),
        (dict(normalization=((0.5,), (0.2,))), ValueError, "expected 3 means"),
        (dict(normalization=((0.5,) * 3, (0.0,) * 3)), ValueError, "positive"),
        (dict(batch_size=50, drop_last=True), ValueError, "leaves no batch"),
    ],
)
def test_bad_arguments(images, kwargs, error, match):
    args = {"batch_size": 4, "shuffle": True, **kwargs}
    with pytest.raises(error, match=match):
        make_loader(images, **args)


def test_features_refuse_named_augmentation_and_non_splits():
    feats = Split(torch.randn(4, 2), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="feature data takes no augmentation"):
        make_loader(feats, batch_size=2, shuffle=False, augment="flip")
    with pytest.raises(TypeError, match="caltrain.data.Split"):
        make_loader(torch.zeros(3, 2), batch_size=2, shuffle=False)
