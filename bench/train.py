"""Training throughput: caltrain's trainer vs a straightforward PyTorch loop with a DataLoader.

Both train the same model (caltrain's ``resnet20`` by default) on the same image-shaped synthetic set with
the same augmentation (random crop with 4-pixel padding, horizontal flip), SGD, cross-entropy, batch 128:

- plain: ``torch.utils.data.DataLoader`` over a dataset whose ``__getitem__`` crops/flips/normalises one
  uint8 image at a time (what one writes without torchvision), NCHW tensors, ``loss.item()`` every step;
- caltrain: the trainer's epoch (device-resident uint8 data, whole-batch augmentation, channels-last).

Reported: training samples per second of each (epochs after one warm-up epoch) and the ratio.

    python bench/train.py                  # resnet20, 2 timed epochs of 2,560 images
    python bench/train.py --quick          # a smaller run to check the script works

``--contention``: one run of the ``quick`` suite (``synthetic__mbls__seed0`` by default: the MLP, 30 epochs,
TS and ATS; ``--run``), trained whole (``caltrain.train.train``, each in a fresh process) with ``threads: auto``
and with ``threads: 0`` (torch's default, one per core), first on the machine as it is, then with ``--load``
(2) busy processes (``while True: pass``). Reported: wall seconds and the ratio loaded / as is.
``--epochs-override N`` shortens the run (the default-threads run under load took minutes).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from caltrain import data as cdata  # noqa: E402
from caltrain import models  # noqa: E402
from caltrain.train.config import build_config  # noqa: E402
from caltrain.train.trainer import Trainer  # noqa: E402


class PerSampleDataset(torch.utils.data.Dataset):
    """uint8 [N, C, H, W] images, augmented one at a time like a torchvision transform pipeline."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean, std, seed: int = 0) -> None:
        self.x, self.y = x, y
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(std, dtype=np.float32)[:, None, None]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]
        padded = np.pad(img, ((0, 0), (4, 4), (4, 4)), mode="constant")
        top, left = self.rng.integers(0, 9, size=2)
        img = padded[:, top:top + img.shape[1], left:left + img.shape[2]]
        if self.rng.random() < 0.5:
            img = img[:, :, ::-1]
        img = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(img)), int(self.y[i])


def plain_loop(splits, model_name: str, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = models.create(model_name, num_classes=splits.num_classes, in_channels=splits.input_shape[0],
                          input_shape=tuple(splits.input_shape))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    ds = PerSampleDataset(splits.train.x.numpy(), splits.train.y.numpy(), splits.mean, splits.std)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)
    times = []
    for _ in range(epochs + 1):
        model.train()
        t0 = time.perf_counter()
        correct = total = 0
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            _ = loss.item()
            correct += (out.argmax(1) == y).sum().item()
            total += y.numel()
        times.append(time.perf_counter() - t0)
    return len(ds) * epochs / sum(times[1:])


def caltrain_loop(data_name: str, data_options: dict, model_name: str, epochs: int, batch_size: int) -> float:
    import tempfile

    cfg = build_config(overrides=[
        f"data.name={data_name}", f"model.name={model_name}", f"data.batch_size={batch_size}", "data.augment=true",
        "optim.lr=0.05", "quiet=true", f"epochs={epochs + 1}", "eval.posthoc=[]",
    ], base={"data": {"options": data_options}})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp)
        progress = type("Silent", (), {"start_epoch": lambda *a: None, "update": lambda *a: None})()
        times = []
        for epoch in range(epochs + 1):
            t0 = time.perf_counter()
            trainer._train_epoch(epoch, progress)
            times.append(time.perf_counter() - t0)
    return len(trainer.data.train) * epochs / sum(times[1:])


_ONE_RUN = """
import json, sys, tempfile, time
from caltrain.train.config import TrainConfig
from caltrain.train.trainer import train
config = TrainConfig.model_validate(json.loads(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    train(config, tmp)
    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "threads": json.load(open(tmp + "/meta.json"))["threads"]}))
"""


def contention(run: str, epochs: int | None, load: int) -> list[dict]:
    """Wall seconds of one quick-suite run per threads setting, as the machine is and under ``load`` busy processes."""
    import os
    import subprocess

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import busy_load, describe

    from caltrain.train.suite import expand, load_suite

    spec = next(s for s in expand(load_suite("quick")) if s.name == run)
    rows = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("OMP_NUM_THREADS", None)
    for busy in (0, load):
        with busy_load(busy):
            for threads in ("auto", 0):
                tree = spec.config.model_dump(mode="json")
                tree["threads"] = threads
                if epochs:
                    tree["epochs"] = epochs
                before = describe()["load"]
                proc = subprocess.run([sys.executable, "-c", _ONE_RUN, json.dumps(tree)], env=env,
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise RuntimeError(f"the run failed:\n{proc.stderr}")
                out = proc.stdout
                result = json.loads(out.strip().splitlines()[-1])
                rows.append({"run": run, "epochs": tree["epochs"], "busy_processes": busy, "threads_setting": threads,
                             "threads": result["threads"]["threads"], "seconds": result["seconds"],
                             "load_before": before, "load_after": describe()["load"]})
                print(json.dumps(rows[-1]), flush=True)
    for r in rows:
        idle = next(b for b in rows if b["threads_setting"] == r["threads_setting"] and not b["busy_processes"])
        r["ratio_to_as_is"] = r["seconds"] / idle["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contention", action="store_true", help="one quick-suite run, as is and under load")
    parser.add_argument("--run", default="synthetic__mbls__seed0")
    parser.add_argument("--load", type=int, default=2)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--n-train", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--epochs-override", dest="epochs_override", type=int, default=None,
                        help="--contention: train this many epochs instead of the suite's")
    args = parser.parse_args()
    if args.contention:
        rows = contention(args.run, args.epochs_override, args.load)
        print(f"\n{'background':<18} {'threads':<8} {'chosen':>6} {'seconds':>9} {'x as is':>8}  load before/after")
        for r in rows:
            bg = f"{r['busy_processes']} busy" if r["busy_processes"] else "as is"
            print(f"{bg:<18} {str(r['threads_setting']):<8} {r['threads']:>6} {r['seconds']:>9.1f} "
                  f"{r['ratio_to_as_is']:>8.2f}  {r['load_before']} / {r['load_after']}")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=2)
        return
    if args.quick:
        args.n_train, args.epochs = 512, 1
    options = {"train_size": args.n_train, "val_size": 256, "test_size": 256}
    splits = cdata.create("synthetic_image", **options)
    plain = plain_loop(splits, args.model, args.epochs, args.batch_size)
    ours = caltrain_loop("synthetic_image", options, args.model, args.epochs, args.batch_size)
    result = {
        "model": args.model, "n_train": args.n_train, "batch_size": args.batch_size, "epochs_timed": args.epochs,
        "plain_samples_per_s": round(plain, 1), "caltrain_samples_per_s": round(ours, 1),
        "speedup": round(ours / plain, 2), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    print(f"{'loop':<12}{'samples/s':>12}")
    print(f"{'plain':<12}{plain:>12.1f}")
    print(f"{'caltrain':<12}{ours:>12.1f}")
    print(f"speedup: {ours / plain:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
