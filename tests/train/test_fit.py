"""caltrain.fit: a user's nn.Module and data through the trainer (same run directory, same numbers on both data
paths, caltrain-supplied indices, head and num_classes checks, exact resume, CLI refusal, report)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler

import caltrain
from caltrain.models import AbstentionHead, with_abstention_head
from caltrain.train.config import ConfigError, build_config
from caltrain.train.inputs import IndexedDataset, as_input, epoch_order, holdout

N, D, K = 240, 6, 3


def _data(n: int = N, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.3).long()
    return x, y


class PairDataset(Dataset):
    """Yields (x, y) only: caltrain must supply the index itself."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def _model(outputs: int = K, seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, outputs))


SETTINGS = dict(device="cpu", threads=1, quiet=True, optim={"name": "adamw", "lr": 1e-2}, data={"batch_size": 32},
                eval={"posthoc": ["ts"]})


def _comparable(summary: dict) -> dict:
    s = dict(summary)
    s.pop("train_seconds")
    s.pop("data")
    return s


@pytest.mark.parametrize("loss", ["socrates", "mbls"])
def test_resident_and_dataloader_paths_give_identical_numbers(tmp_path, loss):
    """Same tensors, same seeded order: tensors (device-resident) == Dataset == shuffling DataLoader, exactly."""
    x, y = _data()
    head = (lambda m: with_abstention_head(m)) if loss == "socrates" else (lambda m: m)
    runs = {
        "tensors": (x, y),
        "dataset": PairDataset(x, y),
        "loader": DataLoader(PairDataset(x, y), batch_size=32, shuffle=True),
    }
    summaries = {}
    for name, train in runs.items():
        settings = {k: v for k, v in SETTINGS.items() if not (name == "loader" and k == "data")}
        result = caltrain.fit(head(_model()), train, loss=loss, epochs=2, out=tmp_path / name, **settings)
        summaries[name] = result.summary
    assert summaries["tensors"]["data"]["path"]["train"] == "device-resident"
    assert summaries["dataset"]["data"]["path"]["train"] == "DataLoader"
    assert _comparable(summaries["tensors"]) == _comparable(summaries["dataset"]) == _comparable(summaries["loader"])
    for split in ("val", "test"):
        a = np.load(tmp_path / "tensors" / f"logits_{split}.npz")["logits"]
        b = np.load(tmp_path / "dataset" / f"logits_{split}.npz")["logits"]
        np.testing.assert_array_equal(a, b)


def test_run_directory_matches_the_cli_layout_and_says_where_it_came_from(tmp_path):
    x, y = _data()
    xv, yv = _data(60, seed=1)
    result = caltrain.fit(_model(), (x.numpy(), y.numpy()), val=(xv, yv), test=PairDataset(xv, yv), loss="mbls",
                          epochs=2, out=tmp_path / "run", **SETTINGS)
    run = result.run_dir
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "logits_val.npz",
                 "logits_test.npz", "fingerprint.json", ".caltrain-run", "calibrators/ts.json"):
        assert (run / name).exists(), name
    assert json.loads((run / "summary.json").read_text())["test"] == result.summary["test"]
    assert result["test"] == result.summary["test"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["source"] == "python" and meta["model"] == "custom:Sequential"
    assert meta["model_class"] == "torch.nn.modules.container.Sequential"
    assert meta["data"]["num_classes"] == K and "PairDataset" in meta["data"]["test"]
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["source"] == "python" and config["model"]["name"] == "custom:Sequential"
    assert config["data"]["name"] == "custom:tensors" and config["loss"]["name"] == "mbls"
    assert result.model is not None and isinstance(result.config, caltrain.TrainConfig)


def test_cli_refuses_to_resume_a_fit_run_with_a_clear_message(tmp_path, capsys):
    from caltrain.cli.main import main

    result = caltrain.fit(_model(), _data(), loss="ce", epochs=1, out=tmp_path / "run", **SETTINGS)
    with pytest.raises(ConfigError, match="caltrain.fit"):
        build_config(result.run_dir / "config.yaml")
    assert main(["train", "--resume", str(result.run_dir)]) == 2
    err = capsys.readouterr().err
    assert "trained from Python with caltrain.fit" in err and "resume=True" in err


def test_report_renders_a_fit_run(tmp_path):
    from caltrain.cli.main import main

    result = caltrain.fit(_model(), _data(), loss="ce", epochs=1, out=tmp_path / "run", **SETTINGS)
    assert main(["report", str(result.run_dir)]) == 0
    assert (result.run_dir / "report.html").is_file()


def test_validation_hold_out_is_seeded_recorded_and_test_falls_back_to_val(tmp_path, capsys):
    x, y = _data()
    settings = {**SETTINGS, "quiet": False}
    result = caltrain.fit(_model(), (x, y), loss="ce", epochs=1, out=tmp_path / "run", seed=3, val_fraction=0.25,
                          **{k: v for k, v in settings.items()})
    data = result.summary["data"]
    assert data["val_holdout"] == {"samples": 60, "of": N, "fraction": 0.25, "seed": 3}
    assert "validation split stands in" in data["test"]
    assert result.summary["val"] == result.summary["test"]
    err = capsys.readouterr().err
    assert "holding out 60 of 240 training samples as validation (seed 3)" in err
    a = holdout(as_input((x, y), "train"), 0.25, 3)[2]
    b = holdout(as_input((x, y), "train"), 0.25, 3)[2]
    assert torch.equal(a, b) and len(a) == 60


def test_wrong_head_fails_before_training_and_names_the_helper(tmp_path):
    with pytest.raises(ValueError, match=r"outputs 3 logits .* needs 4 .*with_abstention_head"):
        caltrain.fit(_model(), _data(), loss="socrates", epochs=1, out=tmp_path / "run", **SETTINGS)
    assert not (tmp_path / "run" / "config.yaml").exists()
    with pytest.raises(ValueError, match=r"outputs 5 logits .* needs 3 .*num_classes="):
        caltrain.fit(_model(5), _data(), loss="ce", epochs=1, out=tmp_path / "run2", **SETTINGS)


def test_num_classes_given_inferred_from_labels_or_from_the_model(tmp_path):
    x, y = _data()
    r = caltrain.fit(_model(5), (x, y), loss="ce", epochs=1, out=tmp_path / "a", num_classes=5, **SETTINGS)
    assert r.summary["data"]["num_classes"] == 5
    # a dataset without targets: K from the model's output width (less the abstention output)
    r = caltrain.fit(with_abstention_head(_model()), PairDataset(x, y), loss="socrates", epochs=1,
                     out=tmp_path / "b", **SETTINGS)
    assert r.summary["data"]["num_classes"] == K
    with pytest.raises(ValueError, match="labels go up to 2"):
        caltrain.fit(_model(2), (x, y), loss="ce", epochs=1, out=tmp_path / "c", num_classes=2, **SETTINGS)


def test_settings_are_validated_like_the_cli(tmp_path):
    args = (_model(), _data())
    with pytest.raises(ConfigError, match="optim.lr"):
        caltrain.fit(*args, epochs=1, out=tmp_path / "a", optim={"lr": -1})
    with pytest.raises(ConfigError, match="did you mean"):
        caltrain.fit(*args, loss="socratez", epochs=1, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="data.name: not a setting of caltrain.fit"):
        caltrain.fit(*args, epochs=1, out=tmp_path / "a", data={"name": "digits"})
    with pytest.raises(ConfigError, match="data.augment"):
        caltrain.fit(*args, epochs=1, out=tmp_path / "a", data={"augment": True})


def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path):
    x, y = _data()
    kw = dict(loss="socrates", epochs=3, **SETTINGS)
    full = caltrain.fit(with_abstention_head(_model()), PairDataset(x, y), out=tmp_path / "full", **kw)

    class Stop(Exception):
        pass

    class Dies(nn.Module):  # raises in the second epoch's training, after epoch 1's checkpoint
        def __init__(self, inner: nn.Module, after: int) -> None:
            super().__init__()
            self.inner, self.after, self.calls = inner, after, 0

        def forward(self, x):
            if self.training:
                self.calls += 1
                if self.calls > self.after:
                    raise Stop
            return self.inner(x)

    steps_per_epoch = -(-int(N * 0.9) // 32)
    dying = Dies(with_abstention_head(_model()), steps_per_epoch + 2)
    with pytest.raises(Stop):
        caltrain.fit(dying, PairDataset(x, y), out=tmp_path / "cut", **kw)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file() and not (tmp_path / "cut" / "summary.json").exists()
    with pytest.raises(ValueError, match="not empty.*resume=True"):
        caltrain.fit(Dies(with_abstention_head(_model()), 10**9), PairDataset(x, y), out=tmp_path / "cut", **kw)
    resumed = caltrain.fit(Dies(with_abstention_head(_model()), 10**9), PairDataset(x, y), out=tmp_path / "cut",
                           resume=True, **kw)
    assert _comparable(resumed.summary) == _comparable(full.summary)
    # a complete run is not retrained; other settings are refused
    again = caltrain.fit(Dies(with_abstention_head(_model()), 0), PairDataset(x, y), out=tmp_path / "cut",
                         resume=True, **kw)
    assert again.summary["test"] == resumed.summary["test"]
    with pytest.raises(ValueError, match="other settings or data"):
        caltrain.fit(Dies(with_abstention_head(_model()), 0), PairDataset(x, y), out=tmp_path / "cut", resume=True,
                     **{**kw, "seed": 5})


def test_indices_travel_with_samples_through_a_rebuilt_loader():
    x, y = _data(50)
    data = as_input(DataLoader(PairDataset(x, y), batch_size=8, shuffle=True), "train")
    loader = data.make_loader(batch_size=8, shuffle=True, seed=0, device=torch.device("cpu"), train=True)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        seen = []
        for xb, yb, ib in loader:
            assert torch.equal(xb, x[ib]) and torch.equal(yb, y[ib])
            seen.append(ib)
        assert torch.equal(torch.cat(seen), epoch_order(50, 0, epoch, True))
    assert IndexedDataset(PairDataset(x, y))[7][2] == 7


def test_unusable_data_is_refused_with_a_reason():
    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(2), 0

    with pytest.raises(TypeError, match="IterableDataset"):
        as_input(Stream(), "train")
    ds = PairDataset(*_data(20))
    with pytest.raises(ValueError, match="replacement"):
        as_input(DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, replacement=True)), "train")
    with pytest.raises(ValueError, match="same N"):
        as_input((torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)), "train")
    with pytest.raises(TypeError, match="labels must be integers"):
        as_input((torch.zeros(3, 2), torch.zeros(3)), "train")


def test_with_abstention_head():
    seq = with_abstention_head(_model())
    assert isinstance(seq, nn.Sequential) and seq[-1].out_features == K + 1
    x = torch.randn(4, D)
    base = _model()
    base.eval()
    seq.eval()
    torch.testing.assert_close(seq(x)[:, :K], base(x))  # the class logits are unchanged

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(D, 3)

        def forward(self, x):
            return self.body(x).relu()

    with pytest.raises(ValueError, match="num_classes"):
        with_abstention_head(Net())
    wrapped = with_abstention_head(Net(), num_classes=3)
    assert isinstance(wrapped, AbstentionHead) and wrapped(x).shape == (4, 4)


def test_import_caltrain_stays_lazy_about_fit():
    import subprocess
    import sys

    code = "import sys, caltrain; print('caltrain.train.fit' in sys.modules); print(callable(caltrain.fit))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("name", ["caltrain.train.fit", "caltrain.models.heads"])
def test_docstring_examples(name, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_custom_sampler_without_val_is_refused_not_an_index_error(tmp_path):
    """A custom sampler draws indices of the whole dataset: holding validation out of it crashed with IndexError
    (or trained on other samples than the sampler chose); it is refused, and works with val= given."""
    from torch.utils.data import SubsetRandomSampler, WeightedRandomSampler

    x, y = _data(60)
    ds = PairDataset(x, y)
    for sampler in (WeightedRandomSampler(torch.ones(60), 60), SubsetRandomSampler(list(range(40, 60)))):
        loader = DataLoader(ds, batch_size=8, sampler=sampler)
        with pytest.raises(ValueError, match="custom sampler.*pass val="):
            caltrain.fit(_model(), loader, epochs=1, out=tmp_path / "a", **{**SETTINGS, "data": {}})
        assert not (tmp_path / "a").exists()
    xv, yv = _data(30, seed=3)
    result = caltrain.fit(_model(), DataLoader(ds, batch_size=8, sampler=SubsetRandomSampler(list(range(40, 60)))),
                          val=(xv, yv), epochs=1, out=tmp_path / "b", **{**SETTINGS, "data": {}})
    assert result.summary["val"]["accuracy"] >= 0


def test_empty_dataloader_and_unbatched_inputs_get_their_own_message():
    """An empty DataLoader was blamed on val_fraction; 1-D inputs said 'must have the same N, got [3] and [3]'."""
    empty = DataLoader(PairDataset(torch.zeros(0, D), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="train: the DataLoader's dataset is empty"):
        as_input(empty, "train")
    with pytest.raises(ValueError, match=r"at least 2-D.*x\[:, None\].*\[3\]"):
        as_input((torch.zeros(3), torch.zeros(3, dtype=torch.long)), "train")


def test_dataset_labels_that_are_not_class_indices_are_refused_not_truncated(tmp_path):
    """A Dataset yielding fractional labels (1.5) was trained on ``.long()``-truncated ones, silently; one-hot
    labels failed with 'got 16 and 48 samples'. Both are refused, naming the labels; whole floats still work."""
    x, y = _data(64)

    class Labels(Dataset):
        def __init__(self, make):
            self.make = make

        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return x[i], self.make(y[i])

    def loader(make):
        data = as_input(Labels(make), "train")
        return data.make_loader(batch_size=16, shuffle=True, seed=0, device=torch.device("cpu"), train=True)

    with pytest.raises(TypeError, match=r"integer class indices, got torch.float64 values such as \d\.5"):
        next(iter(loader(lambda c: float(c) + 0.5)))
    with pytest.raises(TypeError, match=r"one class index per sample .*got shape \[16, 3\]"):
        next(iter(loader(lambda c: nn.functional.one_hot(c, K).float())))
    for make in (float, lambda c: c.view(1)):  # whole-number floats and [1]-shaped labels are class indices
        _, yb, ib = next(iter(loader(make)))
        assert yb.dtype == torch.int64 and torch.equal(yb, y[ib])
    with pytest.raises(TypeError, match=r"such as \d\.5"):
        caltrain.fit(_model(), Labels(lambda c: float(c) + 0.5), val=_data(30, seed=2), epochs=1, out=tmp_path / "r",
                     **SETTINGS)


def test_a_refused_user_folder_is_left_exactly_as_it_was(tmp_path):
    # regression: a refused fit left a .caltrain-lock file in the user's folder
    import caltrain

    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    for options in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(ValueError):
            caltrain.fit(torch.nn.Linear(4, 3), (x, y), epochs=1, out=folder, quiet=True, **options)
        assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_resuming_with_a_model_of_another_width_is_a_value_error(tmp_path):
    # regression: a complete run resumed with a same-class model of another width raised torch's RuntimeError
    import caltrain

    x, y = torch.randn(60, 4), torch.randint(0, 3, (60,))
    small = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    caltrain.fit(small, (x, y), epochs=1, out=tmp_path / "run", quiet=True)
    wide = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with pytest.raises(ValueError, match="does not fit this model"):
        caltrain.fit(wide, (x, y), epochs=1, out=tmp_path / "run", quiet=True, resume=True)
