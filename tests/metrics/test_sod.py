"""SOD metrics against pysodmetrics 1.6.2.

The expected numbers were computed once with pysodmetrics 1.6.2 (NumPy 2.4.6; ``MAE``, ``Fmeasure``, ``Smeasure``,
``Emeasure`` fed the 8-bit maps of :func:`sod_maps`, which uses integer arithmetic only, so the maps are the same
in any NumPy) and stored here; the last test compares against pysodmetrics directly when it is installed.
"""

import numpy as np
import pytest
import torch

from caltrain.metrics.sod import SOD_KEYS, SODMetrics, sod_metrics


def sod_maps(seed, h=23, w=31):
    """Deterministic 8-bit map and mask (seed 3: empty mask, 4: full mask, 5: map not spanning [0, 255])."""
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    cy, cx, r = 5 + seed * 3 % 11, 7 + seed * 5 % 13, 4 + seed % 5
    d2 = (i - cy) ** 2 + (j - cx) ** 2
    gt = np.where(d2 <= r * r, 255, 0).astype(np.uint8)
    if seed == 3:
        gt[:] = 0  # empty mask
    if seed == 4:
        gt[:] = 255  # full mask
    noise = (i * 7919 + j * 104729 + seed * 31337 + i * j * 13) % 97
    base = np.where(d2 <= (r + 2) ** 2, 180, 40) + noise - 48
    if seed == 5:
        base = base // 2 + 30  # not spanning [0, 255]: min-max normalisation matters
    pred = np.clip(base, 0, 255).astype(np.uint8)
    return pred, gt


PYSOD = {
    (0, 1, 2): {
        "mae": 0.24327972413170387, "max_f": 0.5982750707743733, "mean_f": 0.4216592287862839,
        "adp_f": 0.5863111994915818, "s_measure": 0.5971429609852718, "max_e": 0.905002969867846,
        "mean_e": 0.6007772839930983, "adp_e": 0.8069166559696259,
    },
    (3, 4, 5, 6): {
        "mae": 0.3668433428461448, "max_f": 0.46057281949085804, "mean_f": 0.3593645409119589,
        "adp_f": 0.39138143815966947, "s_measure": 0.5443566772312354, "max_e": 0.7133139208142094,
        "mean_e": 0.5544430450440796, "adp_e": 0.6302031969311344,
    },
    (0, 1, 2, 3, 4, 5, 6, 7): {
        "mae": 0.3060853417477129, "max_f": 0.528481271858732, "mean_f": 0.3955486460903795,
        "adp_f": 0.4900403702586581, "s_measure": 0.577434446638406, "max_e": 0.8046709674693237,
        "mean_e": 0.5795667025750075, "adp_e": 0.7249666540933792,
    },
}


def feed(seeds, metric=None):
    metric = metric or SODMetrics()
    for seed in seeds:
        p, g = sod_maps(seed)
        metric.update(torch.from_numpy(p / 255.0)[None], torch.from_numpy(g > 128)[None])
    return metric


@pytest.mark.parametrize("seeds", list(PYSOD))
def test_matches_pysodmetrics_stored(seeds):
    out = feed(seeds).compute()
    for k, v in PYSOD[seeds].items():
        assert out[k] == pytest.approx(v, abs=1e-12), k
    assert out["n_images"] == len(seeds)


def test_batched_equals_image_by_image_and_merge():
    maps = [sod_maps(s) for s in range(8)]
    p = torch.stack([torch.from_numpy(m / 255.0) for m, _ in maps])[:, None]
    g = torch.stack([torch.from_numpy(t > 128) for _, t in maps]).long()
    batched = sod_metrics(p, g)
    assert batched == pytest.approx(feed(range(8)).compute(), abs=1e-12)
    a, b = feed(range(3)), feed(range(3, 8))
    assert a.merge(b).compute() == pytest.approx(batched, abs=1e-12)
    assert set(batched) == set(SOD_KEYS)
    curves = a.curves()
    assert curves["f_measure"].shape == (256,) and float(curves["f_measure"].max()) == pytest.approx(batched["max_f"])


def test_properties_and_hand_cases():
    y = torch.zeros(2, 10, 12, dtype=torch.long)
    y[:, 3:7, 2:9] = 1
    perfect = sod_metrics(y.double(), y)
    assert perfect["mae"] == 0 and perfect["max_f"] == pytest.approx(1) and perfect["s_measure"] == pytest.approx(1)
    assert perfect["max_e"] == pytest.approx(120 / 119)  # pysodmetrics divides by H W - 1
    inverse = sod_metrics(1 - y.double(), y)
    assert inverse["mae"] == 1 and inverse["s_measure"] < 0.1 and inverse["adp_f"] == 0
    empty = sod_metrics(torch.full((1, 4, 4), 0.25), torch.zeros(1, 4, 4), minmax=False)
    assert empty["s_measure"] == pytest.approx(0.75) and empty["mae"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="targets"):
        sod_metrics(torch.rand(1, 4, 4), torch.full((1, 4, 4), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sod_metrics(torch.rand(1, 4, 4) * 3, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        sod_metrics(torch.rand(1, 4, 4), torch.zeros(1, 4, 5))


def test_against_pysodmetrics_installed():
    """Random maps, when pysodmetrics is installed (optional test dependency)."""
    M = pytest.importorskip("py_sod_metrics")
    rng = np.random.default_rng(0)
    mae, fm, sm, em = M.MAE(), M.Fmeasure(), M.Smeasure(), M.Emeasure()
    metric = SODMetrics()
    for _ in range(4):
        g = (rng.random((17, 21)) < 0.3).astype(np.uint8) * 255
        p = np.clip(g * 0.6 + rng.integers(0, 120, g.shape), 0, 255).astype(np.uint8)
        for m in (mae, fm, sm, em):
            m.step(p, g)
        metric.update(torch.from_numpy(p / 255.0)[None], torch.from_numpy(g > 128)[None])
    out = metric.compute()
    f, e = fm.get_results()["fm"], em.get_results()["em"]
    assert out["mae"] == pytest.approx(mae.get_results()["mae"], abs=1e-12)
    assert out["max_f"] == pytest.approx(f["curve"].max(), abs=1e-12)
    assert out["mean_f"] == pytest.approx(f["curve"].mean(), abs=1e-12)
    assert out["adp_f"] == pytest.approx(f["adp"], abs=1e-12)
    assert out["s_measure"] == pytest.approx(sm.get_results()["sm"], abs=1e-12)
    assert out["max_e"] == pytest.approx(e["curve"].max(), abs=1e-12)
    assert out["mean_e"] == pytest.approx(e["curve"].mean(), abs=1e-12)
    assert out["adp_e"] == pytest.approx(e["adp"], abs=1e-12)
