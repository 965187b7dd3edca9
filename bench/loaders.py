"""Images per second: caltrain's device-resident loader against a torch DataLoader with per-sample transforms.

Both produce the same thing from the ``synthetic_image`` training split (uint8 3x32x32): batches of float32
images, randomly cropped with 4 pixels of zero padding, flipped left-right with probability 1/2 and
normalised per channel, with their labels and sample indices, in a new random order every epoch.

- caltrain: ``caltrain.data.make_loader`` (the split on the device, whole-batch augmentation);
- baseline: what a user writes without torchvision (not installable here) - a ``Dataset`` whose
  ``__getitem__`` converts one image to float, pads, crops, flips and normalises it (torchvision's
  ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``, ``Normalize``), and a ``DataLoader`` with
  ``shuffle=True`` and 0 or 2 worker processes.

Run: ``PYTHONPATH=src python bench/loaders.py [--size 5000] [--epochs 3] [--batch-size 128] [--threads 1]``.
Prints one line per loader and the ratio to the fastest baseline; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from caltrain.data import create, make_loader


class PerSampleDataset(torch.utils.data.Dataset):
    """The baseline: per-sample float conversion, zero-padded random crop, random flip, normalisation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean, std, pad: int = 4) -> None:
        self.x, self.y, self.pad = x, y, pad
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i].float() / 255.0
        _, h, w = img.shape
        padded = F.pad(img, (self.pad,) * 4)
        top, left = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        img = padded[:, top : top + h, left : left + w]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        return (img - self.mean) / self.std, self.y[i], i


def images_per_second(make_epoch_iter, epochs: int, n: int) -> float:
    for _ in make_epoch_iter(0):  # warm-up epoch (worker start, allocator)
        pass
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for _ in make_epoch_iter(epoch):
            pass
    return n * epochs / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000, help="training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    ds = create("synthetic_image", train_size=args.size, val_size=10, test_size=10, ood=[])
    split, n = ds.train, len(ds.train)
    results = {}

    loader = make_loader(
        split, batch_size=args.batch_size, shuffle=True, augment="crop,flip", seed=0, normalization=(ds.mean, ds.std)
    )

    def caltrain_epoch(epoch):
        loader.set_epoch(epoch)
        return iter(loader)

    results["caltrain make_loader"] = images_per_second(caltrain_epoch, args.epochs, n)

    dataset = PerSampleDataset(split.x, split.y, ds.mean, ds.std)
    for workers in (0, 2):
        dl = torch.utils.data.DataLoader(
            dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
        )
        results[f"DataLoader per-sample, {workers} workers"] = images_per_second(lambda e: iter(dl), args.epochs, n)

    best_baseline = max(v for k, v in results.items() if k.startswith("DataLoader"))
    ratio = results["caltrain make_loader"] / best_baseline
    for name, value in results.items():
        print(f"{name:40s} {value:12,.0f} images/s")
    print(f"{'ratio to the fastest baseline':40s} {ratio:12.1f}x")
    out = {"images_per_second": results, "ratio": ratio, "config": vars(args)}
    if args.json:
        from caltrain.utils.io import atomic_write_json

        atomic_write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
