"""Build ``netcal_cifar_records.npz``, the real network outputs of the post-hoc calibration tests (README.md).

Reads netcal's example records (``examples/classification/records/`` of the netcal repository,
EFS-OpenSource/calibration-framework, Apache-2.0): one ``.npz`` per network with ``predictions`` (softmax
probabilities, float32 ``[10000, K]``) and ``ground_truth`` (int64 ``[10000]``) of the CIFAR-10 / CIFAR-100
test sets. Writes one compressed ``.npz`` with, per record NAME, ``NAME.logits`` (``log p``, float32: logits
up to a per-sample constant, which the softmax ignores; ``p`` clamped at the smallest float64 first, none of the
records has a zero) and ``NAME.labels`` (int16), plus ``LICENSE-netcal.txt`` when the license file is found.

Run: ``python tests/data/real_outputs/build.py --records PATH/TO/records --out shared/real_outputs`` (PATH: any
folder holding the record files, at any depth; the netcal checkout's LICENSE.txt is looked for above it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

#: The netcal records used, by file stem.
RECORDS = (
    "densenet-bc-100-cifar-100",
    "wideresnet-16-4-cifar-100",
    "lenet-5-cifar-100",
    "wideresnet-16-4-cifar-10",
    "lenet-5-cifar-10",
)
FILENAME = "netcal_cifar_records.npz"


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True, type=Path, help="folder holding netcal's record .npz files")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    args = parser.parse_args(argv)
    found = {p.stem: p for p in args.records.rglob("*.npz") if p.stem in RECORDS}
    missing = [r for r in RECORDS if r not in found]
    if missing:
        raise SystemExit(f"--records: {args.records} lacks {', '.join(missing)}")
    arrays = {}
    for name in RECORDS:
        with np.load(found[name], allow_pickle=False) as data:
            probs = data["predictions"].astype(np.float64)
            labels = data["ground_truth"]
        arrays[f"{name}.logits"] = np.log(np.clip(probs, np.finfo(np.float64).tiny, None)).astype(np.float32)
        arrays[f"{name}.labels"] = labels.astype(np.int16)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / FILENAME
    if target.exists():
        raise SystemExit(f"--out: {target} exists; remove it first")
    np.savez_compressed(target, **arrays)
    for parent in [args.records, *args.records.parents]:
        if (parent / "LICENSE.txt").is_file():
            shutil.copyfile(parent / "LICENSE.txt", args.out / "LICENSE-netcal.txt")
            break
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


if __name__ == "__main__":
    main()
