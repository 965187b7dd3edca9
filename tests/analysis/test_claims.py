"""caltrain.analysis.claims: intervals against NumPy/SciPy references, the verdict rule, Pareto hypervolume
against an exact grid reference, paired effects on hand-made run records, and the shipped claim definitions
against their suites (no training here; tests/cli/test_bench_claims.py runs a tiny claim end to end)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caltrain.analysis import claims as C
from caltrain.analysis.claims import (
    CLAIMS, HOLDS, INCONCLUSIVE, NOT_HOLDS, PENDING, Arm, Claim, Part, bootstrap_interval, combine, evaluate_claim,
    evaluate_part, hypervolume, paired_t_interval, pareto_front, select_claims, t_quantile, verdict,
)
from caltrain.train.suite import expand, load_suite

# t_{p, df} from printed tables (Student's t, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals.
T_TABLE = {(0.975, 1): 12.706, (0.975, 2): 4.303, (0.975, 4): 2.776, (0.975, 9): 2.262, (0.975, 29): 2.045,
           (0.95, 4): 2.132, (0.995, 4): 4.604, (0.9, 10): 1.372, (0.975, 100): 1.984}


# --- t quantile and the paired t interval --------------------------------------------------------------------

@pytest.mark.parametrize(("p", "df"), sorted(T_TABLE))
def test_t_quantile_matches_printed_tables(p, df):
    assert t_quantile(p, df) == pytest.approx(T_TABLE[(p, df)], abs=6e-4)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 7, 10, 19, 30, 51, 200])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 0.2])
def test_t_quantile_matches_scipy(p, df):
    stats = pytest.importorskip("scipy.stats")
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10, abs=1e-12)


def test_t_quantile_symmetry_and_bad_inputs():
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.1, 7) == pytest.approx(-t_quantile(0.9, 7), rel=1e-14)
    for p, df in ((0.0, 3), (1.0, 3), (0.9, 0), (0.9, 2.5)):
        with pytest.raises(ValueError):
            t_quantile(p, df)


def _t_reference(d, alpha=0.05):
    """NumPy float64 reference: mean ± t * s / sqrt(n) (t from SciPy when present, else the printed table)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    try:
        from scipy.stats import t as student
        q = student.ppf(1 - alpha / 2, n - 1)
    except ImportError:
        q = T_TABLE[(1 - alpha / 2, n - 1)]
    s = np.sqrt(np.sum((d - d.mean()) ** 2) / (n - 1))
    return d.mean(), d.mean() - q * s / np.sqrt(n), d.mean() + q * s / np.sqrt(n)


def test_paired_t_interval_hand_numbers():
    # d = (.01, .03, .02, .02, .02): mean .02, s = sqrt(2e-4 / 4) = .0070711, half = 2.776445 * s / sqrt(5) = .0087798
    mean, lo, hi = paired_t_interval([0.01, 0.03, 0.02, 0.02, 0.02])
    assert mean == pytest.approx(0.02, abs=1e-15)
    assert (lo, hi) == pytest.approx((0.02 - 0.0087798, 0.02 + 0.0087798), abs=1e-7)


@pytest.mark.parametrize("n", [2, 5, 10])
def test_paired_t_interval_matches_numpy_reference(rng, n):
    d = rng.normal(0.01, 0.02, n)
    assert paired_t_interval(d) == pytest.approx(_t_reference(d), rel=1e-9)


def test_paired_t_interval_covers_the_mean_95_percent_of_the_time():
    # 4000 seeded normal samples of 5 seeds: coverage 0.95 within 3.5 binomial standard deviations (0.0034)
    gen = np.random.default_rng(7)
    hits = 0
    for d in gen.normal(0.3, 1.7, size=(4000, 5)):
        _, lo, hi = paired_t_interval(d)
        hits += lo <= 0.3 <= hi
    assert abs(hits / 4000 - 0.95) < 3.5 * math.sqrt(0.95 * 0.05 / 4000)


def test_paired_t_interval_degenerate_sizes():
    assert all(math.isnan(x) for x in paired_t_interval([]))
    mean, lo, hi = paired_t_interval([0.4])
    assert mean == 0.4 and math.isnan(lo) and math.isnan(hi)
    assert paired_t_interval([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))


# --- bootstrap over seeds ------------------------------------------------------------------------------------

def test_bootstrap_interval_matches_a_loop_reference():
    m, b = np.array([0.05, 0.07, 0.02, 0.09, 0.04]), np.array([0.06, 0.06, 0.05, 0.05, 0.07])
    est, lo, hi = bootstrap_interval(C.seed_std_difference, m, b, n=2000, seed=3)
    # reference: the same index matrix, one resample at a time, numpy.std(ddof=1), numpy.quantile
    index = np.random.default_rng(3).integers(0, 5, size=(2000, 5))
    values = [np.std(m[i], ddof=1) - np.std(b[i], ddof=1) for i in index]
    assert est == pytest.approx(np.std(m, ddof=1) - np.std(b, ddof=1), rel=1e-12)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])), rel=1e-12)
    assert lo <= est <= hi


def test_bootstrap_interval_pairs_the_resamples():
    # identical arms: every paired resample gives exactly 0 (unpaired resampling would not)
    m = np.array([0.1, 0.4, 0.2, 0.3])
    assert bootstrap_interval(C.seed_std_difference, m, m.copy(), n=500) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="different lengths"):
        bootstrap_interval(C.seed_std_difference, m, m[:3])
    assert all(math.isnan(x) for x in bootstrap_interval(C.seed_std_difference, m[:1], m[:1]))


# --- the verdict rule --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lo", "hi", "direction", "threshold", "expected"), [
    (-0.03, -0.01, "less", 0.0, HOLDS),
    (0.01, 0.03, "less", 0.0, NOT_HOLDS),
    (-0.01, 0.01, "less", 0.0, INCONCLUSIVE),
    (0.01, 0.03, "greater", 0.0, HOLDS),
    (-0.03, -0.01, "greater", 0.0, NOT_HOLDS),
    (-0.01, 0.01, "greater", 0.0, INCONCLUSIVE),
    (-0.008, -0.002, "greater", -0.01, HOLDS),  # non-inferior: worse, but within the margin
    (-0.03, -0.02, "greater", -0.01, NOT_HOLDS),  # worse beyond the margin
    (0.001, 0.004, "less", 0.005, HOLDS),
    (0.0, 0.0, "less", 0.0, INCONCLUSIVE),  # touching the threshold is not excluding it
    (math.nan, math.nan, "less", 0.0, INCONCLUSIVE),
])
def test_verdict_rule(lo, hi, direction, threshold, expected):
    assert verdict(lo, hi, direction=direction, threshold=threshold) == expected


def test_verdict_rejects_an_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        verdict(0, 1, direction="lower")


def test_combine_needs_every_part():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([HOLDS, INCONCLUSIVE, NOT_HOLDS]) == NOT_HOLDS
    assert combine([]) == INCONCLUSIVE


# --- Pareto front and hypervolume ------------------------------------------------------------------------------

def _grid_hypervolume(acc, ece, ref):
    """Exact reference by coordinate compression: a cell between consecutive distinct coordinates is dominated
    iff some point has accuracy >= its right edge and ECE <= its lower edge."""
    acc, ece = np.asarray(acc), np.asarray(ece)
    xs = np.unique(np.clip(np.append(acc, ref[0]), ref[0], None))
    ys = np.unique(np.clip(np.append(ece, ref[1]), None, ref[1]))
    area = 0.0
    for x0, x1 in zip(xs[:-1], xs[1:]):
        for y0, y1 in zip(ys[:-1], ys[1:]):
            if np.any((acc >= x1) & (ece <= y0)):
                area += (x1 - x0) * (y1 - y0)
    return area


def test_hypervolume_hand_example():
    acc, ece = [0.9, 0.8, 0.85], [0.05, 0.02, 0.06]  # the third is dominated by the first
    assert list(pareto_front(acc, ece)) == [0, 1]
    # (0.9 - 0.8) * (0.1 - 0.05) + (0.8 - 0.7) * (0.1 - 0.02) = 0.005 + 0.008
    assert hypervolume(acc, ece, (0.7, 0.1)) == pytest.approx(0.013, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_the_exact_grid_reference(seed):
    gen = np.random.default_rng(seed)
    acc, ece = gen.uniform(0.6, 0.95, 8), gen.uniform(0.0, 0.2, 8)
    ref = (0.65, 0.18)  # some points lie outside the reference box
    assert hypervolume(acc, ece, ref) == pytest.approx(_grid_hypervolume(acc, ece, ref), rel=1e-12, abs=1e-15)


def test_hypervolume_properties():
    acc, ece, ref = [0.9, 0.8], [0.05, 0.02], (0.7, 0.1)
    base = hypervolume(acc, ece, ref)
    assert hypervolume(acc + [0.85], ece + [0.06], ref) == pytest.approx(base)  # a dominated point adds nothing
    assert hypervolume(acc + [0.9], ece + [0.05], ref) == pytest.approx(base)  # nor does a duplicate
    assert hypervolume([0.91, 0.8], ece, ref) > base  # a better point enlarges it
    assert hypervolume([0.6], [0.05], ref) == 0.0  # outside the reference box
    assert list(pareto_front([0.8, 0.8], [0.1, 0.1])) == [0]


# --- paired effects on hand-made run records -----------------------------------------------------------------

def _run(objective, seed, *, dataset="main", variant="", acc=0.8, ece=0.05, nll=0.5, ts=None, ats=None,
         test_ece_curve=None, val_acc_curve=None, r=None):
    return {"run": f"{dataset}__{objective}__seed{seed}",
            "labels": {"dataset": dataset, "model": "mlp", "objective": objective, "variant": variant, "seed": seed},
            "test": {"accuracy": acc, "ece": ece, "nll": nll}, "val": {"accuracy": acc},
            "posthoc": {k: v for k, v in (("ts", ts), ("ats", ats)) if v is not None},
            "curves": {"test_ece": test_ece_curve or [ece] * 6, "val_accuracy": val_acc_curve or [acc] * 6},
            "coupling": None if r is None else {"r_subset": r}}


def test_paired_effect_interval_and_verdict_on_hand_numbers():
    m_ece, b_ece = [0.02, 0.03, 0.025, 0.02, 0.03], [0.08, 0.09, 0.07, 0.085, 0.075]
    runs = [_run("new", s, ece=v) for s, v in enumerate(m_ece)] + [_run("ce", s, ece=v) for s, v in enumerate(b_ece)]
    out = evaluate_part(Part("ECE", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "less"), runs)
    d = np.subtract(m_ece, b_ece)
    assert (out["effect"], out["lo"], out["hi"]) == pytest.approx(_t_reference(d), rel=1e-9)
    assert out["verdict"] == HOLDS and out["seeds"] == [0, 1, 2, 3, 4]
    assert out["method_estimate"] == pytest.approx(np.mean(m_ece))
    assert out["baseline_estimate"] == pytest.approx(np.mean(b_ece))
    # the same numbers against the claim "greater" do not hold
    out = evaluate_part(Part("ECE", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "greater"), runs)
    assert out["verdict"] == NOT_HOLDS


def test_pairing_uses_the_seeds_both_arms_finished():
    runs = [_run("new", s, acc=0.8 + 0.01 * s) for s in range(5)] + [_run("ce", s, acc=0.8) for s in (0, 2, 3)]
    out = evaluate_part(Part("acc", "test.accuracy", Arm({"objective": "new"}), Arm({"objective": "ce"}), "greater"),
                        runs)
    assert out["seeds"] == [0, 2, 3]
    assert out["method_values"] == pytest.approx([0.80, 0.82, 0.83])


def test_too_few_seeds_is_inconclusive_with_a_note():
    runs = [_run("new", 0, ece=0.01), _run("ce", 0, ece=0.09)]
    out = evaluate_part(Part("ECE", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "less"), runs)
    assert out["verdict"] == INCONCLUSIVE and "at least 2" in " ".join(out["notes"])


def test_non_inferiority_holds_within_the_margin_and_says_the_method_is_worse():
    m = [0.795, 0.796, 0.794, 0.797, 0.795]  # 0.5 points below the baseline on every seed, margin 1 point
    runs = [_run("new", s, acc=v) for s, v in enumerate(m)] + [_run("ce", s, acc=0.80 + 1e-4 * s) for s in range(5)]
    t = Part("acc", "test.accuracy", Arm({"objective": "new"}), Arm({"objective": "ce"}), "greater", margin=0.01)
    out = evaluate_part(t, runs)
    assert out["threshold"] == -0.01 and out["verdict"] == HOLDS
    assert any("worse than the baseline" in n for n in out["notes"])


def test_a_non_inferiority_interval_wider_than_the_margin_is_flagged():
    m = [0.03, 0.05, 0.02, 0.06, 0.04]
    runs = [_run("new", s, ece=v) for s, v in enumerate(m)] + [_run("ce", s, ece=0.04) for s in range(5)]
    t = Part("ECE", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "less", margin=0.005)
    out = evaluate_part(t, runs)
    assert out["verdict"] == INCONCLUSIVE and "wider than twice the margin" in out["notes"][0]


def test_equal_differences_are_flagged():
    runs = [_run("new", s, ece=0.05) for s in range(3)] + [_run("ce", s, ece=0.05) for s in range(3)]
    out = evaluate_part(Part("ECE", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "less"), runs)
    assert out["verdict"] == INCONCLUSIVE and "zero width" in out["notes"][0]


def test_difference_in_differences_through_relative_to():
    runs = []
    for s in range(4):
        runs += [_run("gence", s, dataset="lt", acc=0.70 + 0.03 + 0.001 * s), _run("ce", s, dataset="lt", acc=0.70),
                 _run("gence", s, dataset="bal", acc=0.85 + 0.01), _run("ce", s, dataset="bal", acc=0.85)]
    gain = Part("gain", "test.accuracy",
                Arm({"objective": "gence", "dataset": "lt"}, Arm({"objective": "ce", "dataset": "lt"})),
                Arm({"objective": "gence", "dataset": "bal"}, Arm({"objective": "ce", "dataset": "bal"})), "greater")
    out = evaluate_part(gain, runs)
    assert out["method_values"] == pytest.approx([0.03, 0.031, 0.032, 0.033])
    assert out["baseline_values"] == pytest.approx([0.01] * 4)
    assert out["effect"] == pytest.approx(0.0215) and out["verdict"] == HOLDS


def test_one_sample_test_of_the_coupling_r():
    runs = [_run("ce", s, variant="sgd", r=v) for s, v in enumerate([0.9, 0.8, 0.95, 0.85, 0.7])]
    out = evaluate_part(Part("r", "coupling_r", Arm({"objective": "ce", "variant": "sgd"}), None, "greater"), runs)
    assert out["baseline_values"] is None and out["interval"].startswith("one-sample t")
    assert (out["effect"], out["lo"], out["hi"]) == pytest.approx(_t_reference([0.9, 0.8, 0.95, 0.85, 0.7]))
    assert out["verdict"] == HOLDS
    with pytest.raises(KeyError, match="curvature"):
        evaluate_part(Part("r", "coupling_r", Arm({"objective": "ce"}), None, "greater"), [_run("ce", 0)])


def test_baseline_metric_compares_calibrated_with_uncalibrated():
    runs = [_run("gence", s, ece=0.08, ats=0.02 + 0.001 * s) for s in range(3)] + [
        _run("focal", s, ece=0.03) for s in range(3)]
    for r in runs:
        if r["posthoc"]:
            r["posthoc"] = {"ats": {"ece": r["posthoc"]["ats"]}}
    t = Part("ats vs focal", "posthoc.ats.ece", Arm({"objective": "gence"}), Arm({"objective": "focal"}), "less",
             margin=0.005, baseline_metric="test.ece")
    out = evaluate_part(t, runs)
    assert out["method_values"] == pytest.approx([0.02, 0.021, 0.022]) and out["baseline_values"] == [0.03] * 3
    assert out["verdict"] == HOLDS and "baseline: test ECE" in out["metric_description"]


def test_ats_minus_ts_metric():
    runs = [_run("ce", s) for s in range(3)]
    for s, r in enumerate(runs):
        r["posthoc"] = {"ts": {"ece": 0.02, "nll": 0.5}, "ats": {"ece": 0.028 + 0.001 * s, "nll": 0.49}}
    out = evaluate_part(Part("ece", "posthoc_ats_minus_ts.ece", Arm({"objective": "ce"}), None, "less",
                             margin=0.005), runs)
    assert out["method_values"] == pytest.approx([0.008, 0.009, 0.010]) and out["verdict"] == NOT_HOLDS
    out = evaluate_part(Part("nll", "posthoc_ats_minus_ts.nll", Arm({"objective": "ce"}), None, "less",
                             margin=0.01), runs)
    assert out["effect"] == pytest.approx(-0.01) and out["verdict"] == HOLDS


def test_curve_metrics():
    curve = [0.2, 0.1, 0.05, 0.06, 0.04, 0.07, 0.05]
    run = _run("x", 0, test_ece_curve=curve, val_acc_curve=[0.1, 0.5, 0.78, 0.8, 0.82])
    assert C.metric_value("last_epochs_ece_std", [run]) == pytest.approx(np.std(curve[-5:], ddof=1))
    assert C.metric_value("epochs_to_95", [run]) == 3.0  # 0.78 >= 0.95 * 0.82 = 0.779 at epoch 3


def test_seed_std_statistic_and_the_easy_convergence_note():
    runs = [_run("new", s, ece=0.05 + 0.001 * s, val_acc_curve=[0.8] * 4) for s in range(5)] + [
        _run("old", s, ece=0.05 + 0.02 * s, val_acc_curve=[0.8] * 4) for s in range(5)]
    out = evaluate_part(Part("std", "test.ece", Arm({"objective": "new"}), Arm({"objective": "old"}), "less",
                             statistic="seed_std"), runs, n_boot=1000)
    assert out["effect"] == pytest.approx(np.std([0.001 * s for s in range(5)], ddof=1)
                                          - np.std([0.02 * s for s in range(5)], ddof=1))
    assert out["interval"].startswith("percentile bootstrap")
    conv = evaluate_part(Part("conv", "epochs_to_95", Arm({"objective": "new"}), Arm({"objective": "old"}), "less"),
                         runs)
    assert conv["verdict"] == INCONCLUSIVE and any("too easy" in n for n in conv["notes"])


def test_hypervolume_test_compares_fronts_per_seed():
    runs = []
    for s in range(3):
        runs += [_run("m-1", s, acc=0.85, ece=0.02), _run("m-2", s, acc=0.80, ece=0.01),
                 _run("b-1", s, acc=0.84 - 0.001 * s, ece=0.04), _run("b-2", s, acc=0.78, ece=0.03)]
    t = Part("front", "hypervolume", Arm({"objective": ("m-1", "m-2")}), Arm({"objective": ("b-1", "b-2")}),
             "greater")
    out = evaluate_part(t, runs)
    ref = (0.78, 0.04)  # worst accuracy and worst ECE over every run
    for s in range(3):
        assert out["method_values"][s] == pytest.approx(hypervolume([0.85, 0.80], [0.02, 0.01], ref))
        assert out["baseline_values"][s] == pytest.approx(hypervolume([0.84 - 0.001 * s, 0.78], [0.04, 0.03], ref))
    assert out["verdict"] == HOLDS
    assert out["points"]["m-1"] == pytest.approx([0.85, 0.02]) and out["points"]["b-1"] == pytest.approx([0.839, 0.04])
    with pytest.raises(ValueError, match="one run per seed"):  # a per-run metric on a sweep is a definition error
        evaluate_part(Part("x", "test.ece", Arm({"objective": ("m-1", "m-2")}), None, "less"), runs)


def test_unknown_metric_and_statistic_fail_with_the_valid_names():
    with pytest.raises(ValueError, match="valid"):
        C.metric_info("test_ece")
    with pytest.raises(ValueError, match="statistic"):
        evaluate_part(Part("x", "test.ece", Arm({"objective": "a"}), Arm({"objective": "b"}), "less",
                           statistic="median"), [_run("a", 0)])


def test_pending_and_empty_claims():
    claim = Claim("x-y", "paper", "text", "claims-x", (), pending="waits for the dense task")
    out = evaluate_claim(claim, [])
    assert out["verdict"] == PENDING and out["reason"] == "waits for the dense task" and out["parts"] == []
    out = evaluate_claim(Claim("x-z", "paper", "text", "claims-x", ()), [])
    assert out["verdict"] == INCONCLUSIVE and "no complete run" in out["reason"]


def test_select_claims():
    assert [c.id for c in select_claims(["socrates"])] == ["socrates-stability", "socrates-convergence",
                                                          "socrates-tradeoff"]
    assert [c.id for c in select_claims(["ats-vs-ts", "mbls"])] == ["mbls-tradeoff", "ats-vs-ts"]  # table order
    assert select_claims(None) == list(CLAIMS)
    with pytest.raises(ValueError, match="did you mean"):
        select_claims(["socrate"])


# --- the shipped claims against their suites -------------------------------------------------------------------

def _fake_records(suite_name):
    """A run record for every grid point of the suite, with made-up seeded metrics (no training)."""
    gen = np.random.default_rng(0)
    records = []
    for spec in expand(load_suite(suite_name)):
        post = {c: {"ece": gen.uniform(0.01, 0.05), "nll": gen.uniform(0.4, 0.6)} for c in spec.config.eval.posthoc}
        r = _run(spec.labels["objective"], spec.labels["seed"], dataset=spec.labels["dataset"],
                 variant=spec.labels["variant"], acc=gen.uniform(0.8, 0.86), ece=gen.uniform(0.01, 0.1),
                 test_ece_curve=list(gen.uniform(0.01, 0.1, 8)), val_acc_curve=list(gen.uniform(0.7, 0.86, 8)),
                 r=gen.uniform(-1, 1) if spec.config.curvature.every_steps else None)
        r["posthoc"] = post
        records.append(r)
    return records


def test_every_shipped_claim_evaluates_on_its_suite_grid():
    active = [c for c in CLAIMS if not c.pending]
    assert {c.suite for c in active} == {"claims-socrates", "claims-mbls", "claims-calmo", "claims-gence",
                                         "claims-ats", "claims-aslp"}
    cache = {}
    for claim in active:
        suite = load_suite(claim.suite)
        assert len(suite.seeds) >= 5 and suite.base.get("threads") == 1
        records = cache.setdefault(claim.suite, _fake_records(claim.suite))
        out = evaluate_claim(claim, records)
        assert out["verdict"] in (HOLDS, NOT_HOLDS, INCONCLUSIVE)
        for t in out["parts"]:
            assert t["seeds"] == list(suite.seeds), (claim.id, t["label"])  # every part pairs all 5 seeds


def test_aslp_is_active_on_the_dense_task():
    (aslp,) = [c for c in CLAIMS if c.id.startswith("aslp")]
    assert not aslp.pending and aslp.parts
    suite = load_suite(aslp.suite)
    assert {o["loss"]["name"] for o in suite.objectives.values()} == {"bce", "aslp"}


@pytest.mark.parametrize("suite_name", ["claims-socrates", "claims-mbls", "claims-calmo", "claims-gence",
                                        "claims-ats"])
def test_claims_suites_build_on_cifar_with_overrides(suite_name, tmp_path):
    # docs/claims.md: the same suites on CIFAR-10 (configurations only: no data is read)
    overrides = ["data.name=cifar10", f"data.root={tmp_path}", "model.name=resnet20", "model.options={}"]
    specs = expand(load_suite(suite_name), overrides, seeds=[0])
    assert {s.config.data.name for s in specs} == {"cifar10"} and {s.config.model.name for s in specs} == {"resnet20"}


def test_pages_escape_and_list_every_claim():
    claim = Claim("x-<b>", "paper & co", "claim <text>", "claims-x",
                  (Part("a < b", "test.ece", Arm({"objective": "new"}), Arm({"objective": "ce"}), "less"),))
    runs = [_run("new", s, ece=0.01 * s) for s in range(3)] + [_run("ce", s, ece=0.05) for s in range(3)]
    document = {"rule": C.VERDICT_RULE, "alpha": 0.05, "caltrain_version": "x",
                "claims": [evaluate_claim(claim, runs), evaluate_claim(CLAIMS[-1], [])]}
    document["claims"][-1] = {**document["claims"][-1], "verdict": PENDING, "reason": "waits"}
    page = C.to_html(document)
    assert "x-&lt;b&gt;" in page and "a &lt; b" in page and "<script" not in page and "http" not in page
    assert "pending" in page
    assert page.count("<h2 ") == 2 and "<td class='holds'>holds</td>" in page
    md = C.to_markdown(document)
    assert f"## {CLAIMS[-1].id}: pending" in md and "## x-<b>: holds" in md
    row = next(line for line in md.splitlines() if line.startswith("| a < b |"))
    # method 0.01 (mean of 0, 1, 2 points), baseline 5 points, effect -4 points, t interval with 2 df
    half = 4.302653 * np.std([0.0, 1.0, 2.0], ddof=1) / np.sqrt(3)
    assert "new: 1.00" in row and "ce: 5.00" in row and f"-4.00 [{-4 - half:+.2f}, {-4 + half:+.2f}]" in row


def test_evaluate_folder_without_runs(tmp_path):
    document = C.evaluate_folder(tmp_path, select_claims(["ats", "aslp"]))
    ats, aslp = document["claims"]
    assert ats["verdict"] == INCONCLUSIVE and "no complete run of suite claims-ats" in ats["reason"]
    assert aslp["verdict"] == INCONCLUSIVE and "no complete run of suite claims-aslp" in aslp["reason"]
    assert document["rule"] == C.VERDICT_RULE


def test_load_run_records_reads_the_coupling_of_tracked_runs(tmp_path):
    # two tiny runs through the suite runner: the records carry the aggregate's values and the coupling r
    import textwrap

    from caltrain.train.suite import run_suite

    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent("""
        description: tiny curvature-tracked suite
        seeds: [0, 1]
        base: {epochs: 2, quiet: true, threads: 1, data: {batch_size: 32},
               eval: {posthoc: [ts], ood: false, splits: [val, test]},
               curvature: {every_steps: 1, subset: 32, iters: 5}}
        datasets:
          main: {data: {name: synthetic, options: {train_size: 96, val_size: 48, test_size: 48, dim: 4}},
                 model: {name: mlp, options: {hidden: [8]}}}
        objectives:
          ce: {loss: {name: ce}}
    """))
    out = tmp_path / "out"
    assert run_suite(load_suite(str(path)), out, log=lambda s: None)["failed"] == []
    records = C.load_run_records(out)
    assert [r["labels"]["seed"] for r in records] == [0, 1]
    for r in records:
        assert -1.0 <= r["coupling"]["r_subset"] <= 1.0 and r["coupling"]["points"] == 6  # 3 steps x 2 epochs
        assert len(r["curves"]["test_ece"]) == 2 and "ece" in r["posthoc"]["ts"]
        assert C.metric_value("coupling_r", [r]) == r["coupling"]["r_subset"]
    setting = C.suite_setting(out, records)
    assert setting["epochs"] == 2 and setting["seeds"] == [0, 1] and setting["test_samples"] == 48
    assert "2 epochs" in C.setting_text(setting)
