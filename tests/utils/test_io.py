import json

import numpy as np
import pytest
import torch

from caltrain.utils import io


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "summary.json"
    io.atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_write(target, "w") as fh:
            fh.write('{"a": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp files left


def test_json_converts_tensors_and_numpy(tmp_path):
    target = tmp_path / "x.json"
    io.atomic_write_json(target, {"t": torch.tensor([1.5, 2.0]), "n": np.float64(0.25), "nan": float("nan")})
    assert json.loads(target.read_text()) == {"t": [1.5, 2.0], "n": 0.25, "nan": None}


def test_npz_and_pt_round_trip(tmp_path):
    logits = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])
    io.save_npz(tmp_path / "p.npz", logits=torch.from_numpy(logits), labels=labels)
    back = io.load_arrays(tmp_path / "p.npz")
    np.testing.assert_array_equal(back["logits"], logits)
    torch.save({"logits": torch.from_numpy(logits), "labels": torch.from_numpy(labels)}, tmp_path / "p.pt")
    back = io.load_arrays(tmp_path / "p.pt")
    np.testing.assert_array_equal(back["labels"], labels)
    with pytest.raises(ValueError, match="expected a .npz or .pt file"):
        (tmp_path / "p.csv").write_text("x")
        io.load_arrays(tmp_path / "p.csv")
    with pytest.raises(FileNotFoundError):
        io.load_arrays(tmp_path / "missing.npz")


def test_append_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    io.append_jsonl(path, {"epoch": 1})
    io.append_jsonl(path, {"epoch": 2})
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2]


def test_atomic_files_get_the_mode_open_would_give(tmp_path):
    # regression: mkstemp's 0600 leaked into results files, unreadable by other users of a shared run directory
    import os

    from caltrain.utils.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_unreadable_prediction_files_raise_valueerror_naming_the_file(tmp_path):
    # regression: a truncated .npz/.pt or a directory escaped the CLI's error handling with a traceback
    # (zipfile.BadZipFile, RuntimeError, IsADirectoryError), and a text file named .npz blamed pickling
    good = tmp_path / "good.npz"
    io.save_npz(good, logits=np.zeros((4, 3)), labels=np.zeros(4, dtype=np.int64))
    (tmp_path / "trunc.npz").write_bytes(good.read_bytes()[:100])
    (tmp_path / "text.npz").write_text("not an archive")
    torch.save({"logits": torch.zeros(4, 3)}, tmp_path / "good.pt")
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "good.pt").read_bytes()[:100])
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "dir.npz").mkdir()
    np.savez(tmp_path / "obj.npz", logits=np.array([{"a": 1}], dtype=object))
    for name in ("trunc.npz", "text.npz", "trunc.pt", "text.pt", "dir.npz", "obj.npz"):
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            io.load_arrays(tmp_path / name)
