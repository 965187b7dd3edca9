import json

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from caltrain.analysis.coupling import coupling_mlp, coupling_study, gaussian_mixture, main, pearson_r


def test_pearson_r_matches_scipy_and_is_nan_when_undefined(rng):
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert pearson_r(a, a + b) == pytest.approx(pearsonr(a, a + b)[0], rel=1e-12)
    assert np.isnan(pearson_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert np.isnan(pearson_r([1.0, 2.0], [1.0, 2.0]))


def test_gaussian_mixture_is_seeded_and_flips_the_asked_fraction():
    x, y, xt, yt = gaussian_mixture(4000, 50, label_noise=0.5, seed=3)
    x2, y2, _, _ = gaussian_mixture(4000, 50, label_noise=0.5, seed=3)
    clean = gaussian_mixture(4000, 50, label_noise=0.0, seed=3)[1]
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (4000, 32) and xt.shape == (50, 32) and x.dtype == torch.float32
    # a flipped label keeps its class with probability 1/10: expected changed fraction 0.5 * 0.9
    assert float((y != clean).double().mean()) == pytest.approx(0.45, abs=0.03)


def test_coupling_mlp_is_the_papers_two_by_two_hundred_tanh_network():
    net = coupling_mlp(32, 10)
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert sum(p.numel() for p in net.parameters()) == 32 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adamw"])
def test_small_study_records_every_measurement_and_correlations(optimizer):
    rng_state = torch.get_rng_state()
    result = coupling_study(optimizer=optimizer, steps=20, every=10, n_train=120, n_test=80, subset=40,
                            iters=5, batch_size=32)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert [r["step"] for r in result["records"]] == [0, 10, 20]
    first, last = result["records"][0], result["records"][-1]
    assert {"train_gn_sharpness", "test_gn_sharpness", "train_ece", "test_ece", "loss"} <= set(first)
    assert last["loss"] < first["loss"]  # it trains
    assert all(-1 <= r <= 1 for r in result["pearson"].values())
    assert result["pearson"]["test: ece~gn"] == pytest.approx(
        pearson_r([r["test_ece"] for r in result["records"]], [r["test_gn_sharpness"] for r in result["records"]]))


def test_main_prints_a_line_per_optimizer_and_writes_json(tmp_path, capsys, monkeypatch):
    import caltrain.analysis.coupling as coupling

    small = dict(n_train=100, n_test=60, iters=3, batch_size=20)
    original = coupling.coupling_study
    monkeypatch.setattr(coupling, "coupling_study", lambda **kw: original(**kw, **small))
    out = tmp_path / "c.json"
    assert main(["--optimizers", "sgd", "--steps", "6", "--every", "3", "--subset", "30", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("sgd")
    saved = json.loads(out.read_text())
    assert saved["sgd"]["config"]["steps"] == 6 and len(saved["sgd"]["records"]) == 3


def test_study_errors():
    with pytest.raises(ValueError, match="optimizer: expected one of 'gd', 'sgd', 'adamw', got 'muon'"):
        coupling_study(optimizer="muon")
    with pytest.raises(ValueError, match=r"lr: expected a finite number in \(0, inf\)"):
        coupling_study(lr=0.0)
