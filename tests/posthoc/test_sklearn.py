"""Every calibrator is a scikit-learn estimator: clone, get/set_params, NumPy/tensor in and out, Pipeline.

scikit-learn's ``check_estimator`` runs a subset here (``APPLICABLE_CHECKS``); the rest feed random features
(not logits: labels outside the columns, 1 feature, complex/object/sparse data, string labels) or assume
scikit-learn's own conventions that caltrain's calibrators do not share on purpose (docs/posthoc.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc import CalibratedClassifier

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

NAMES = posthoc.names()
LOGIT_MAPS = [n for n in NAMES if posthoc.CALIBRATORS.get(n).is_logit_map]
APPLICABLE_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_get_params_invariance",
    "check_set_params",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_fit_check_is_fitted",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
)


def _data(name: str, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    k = 2 if posthoc.CALIBRATORS.get(name).binary_only else 3
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(n, k))
    y = (z + 2.0 * rng.normal(size=z.shape)).argmax(axis=1)
    return z, y


def _fit(cal, z, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a fitted bound on tiny data
        return cal.fit(z, y)


@pytest.mark.parametrize("name", NAMES)
def test_clone_gives_an_unfitted_copy_with_equal_params(name):
    cal = posthoc.create(name)
    copy = clone(cal)
    assert type(copy) is type(cal) and copy is not cal and copy.get_params() == cal.get_params()
    z, y = _data(name)
    _fit(cal, z, y)
    copy = clone(cal)
    assert copy.get_params() == cal.get_params()
    assert not hasattr(copy, "n_classes_") and not hasattr(copy, "classes_")
    with pytest.raises(posthoc.NotFittedError):
        copy.predict_proba(z)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ts", {"t_min": 1, "t_max": np.float64(50.0)}),  # an int and a NumPy scalar come back as given
        ("ts-grid-ece", {"grid": [0.5, 1, 2.0]}),
        ("histogram", {"n_bins": np.int64(7), "abstention": "renormalized"}),
        ("vector", {"reg_mu": 0.1}),
    ],
)
def test_clone_keeps_non_default_params_unmodified(name, params):
    cal = posthoc.create(name, **params)
    for key, value in params.items():
        assert getattr(cal, key) is value
    assert clone(cal).get_params() == cal.get_params()


def test_deprecated_abstention_spelling_clones_as_the_new_name():
    with pytest.warns(DeprecationWarning):
        cal = posthoc.create("ts", abstention="classes")
    assert clone(cal).abstention == "renormalized"


@pytest.mark.parametrize("name", NAMES)
def test_get_set_params_round_trip(name):
    cal = posthoc.create(name)
    params = cal.get_params(deep=True)
    assert params == cal.get_params(deep=False)
    assert cal.set_params(**params) is cal and cal.get_params() == params
    assert cal.set_params() is cal
    with pytest.raises(ValueError, match="invalid parameter 'not_a_param'.*valid parameters"):
        cal.set_params(not_a_param=1)


def test_set_params_checks_values_and_sets_nothing_on_error():
    cal = posthoc.create("ts")
    with pytest.raises(ValueError, match="t_max"):
        cal.set_params(t_min=0.5, t_max=0.1)
    assert cal.t_min == 0.01 and cal.t_max == 1000.0
    assert cal.set_params(t_min=0.5).t_min == 0.5
    with pytest.raises(ValueError, match="did you mean.*t_min"):
        cal.set_params(tmin=0.5)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_in_numpy_out(name):
    z, y = _data(name)
    cal = _fit(posthoc.create(name), z, y)
    assert cal.fit(z, y) is cal
    outs = [cal.predict_proba(z)] + ([cal.transform(z)] if cal.is_logit_map else [])
    for out in outs:
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == z.shape
    pred = cal.predict(z)
    assert isinstance(pred, np.ndarray) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, outs[0].argmax(axis=1))
    np.testing.assert_array_equal(cal.classes_, np.arange(z.shape[1]))
    assert cal.score(z, y) == pytest.approx(float(np.mean(pred == y)))
    if not cal.is_logit_map:
        assert not hasattr(cal, "transform")
        with pytest.raises(NotImplementedError, match="not a logit map"):
            cal.transform(z)


@pytest.mark.parametrize("name", NAMES)
def test_tensor_in_tensor_out_and_agrees_with_numpy(name):
    z, y = _data(name)
    zt, yt = torch.from_numpy(z).float(), torch.from_numpy(y)
    cal = _fit(posthoc.create(name), zt, yt)
    probs = cal.predict_proba(zt)
    assert torch.is_tensor(probs) and probs.dtype == torch.float64
    np.testing.assert_allclose(cal.predict_proba(zt.numpy()), probs.numpy(), rtol=0, atol=1e-12)
    assert torch.is_tensor(cal.predict(zt)) and torch.equal(cal.predict(zt), probs.argmax(dim=1))
    if cal.is_logit_map:
        logits = cal.transform(zt)
        assert torch.is_tensor(logits) and logits.dtype == torch.float64
        np.testing.assert_allclose(cal.transform(zt.numpy()), logits.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["platt", "beta"])
def test_binary_1d_logits_numpy_in_numpy_out(name):
    z, y = _data(name)
    s = z[:, 1] - z[:, 0]
    cal = posthoc.create(name).fit(s, y)
    out = cal.transform(s)
    assert isinstance(out, np.ndarray) and out.shape == s.shape
    assert cal.predict_proba(s).shape == (len(s), 2)


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_last_step_equals_direct_use(name):
    z, y = _data(name)
    features = z / 2.0  # the "model": a FunctionTransformer that produces the logits
    pipe = make_pipeline(FunctionTransformer(lambda x: 2.0 * x), posthoc.create(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe.fit(features, y)
    direct = _fit(posthoc.create(name), z, y)
    np.testing.assert_allclose(pipe.predict_proba(features), direct.predict_proba(z), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pipe.predict(features), direct.predict(z))
    assert pipe.score(features, y) == pytest.approx(direct.score(z, y))
    assert sklearn.base.is_classifier(pipe)


@pytest.mark.parametrize("name", LOGIT_MAPS)
def test_logit_map_is_a_pipeline_intermediate_step(name):
    z, y = _data(name)
    pipe = make_pipeline(posthoc.create(name), FunctionTransformer(lambda x: x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = pipe.fit_transform(z, y)
    direct = _fit(posthoc.create(name), z, y)
    np.testing.assert_allclose(out, direct.transform(z), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_applicable_estimator_checks(name):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(posthoc.create(name), on_fail=None)
    status = {}
    for r in results:
        if r["check_name"] in APPLICABLE_CHECKS:
            status.setdefault(r["check_name"], []).append((r["status"], repr(r["exception"])[:200]))
    assert set(status) == set(APPLICABLE_CHECKS)
    failed = {k: v for k, v in status.items() if any(s != "passed" for s, _ in v)}
    assert not failed


# --------------------------------------------------------------------------------------- CalibratedClassifier
def _binary_problem():
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, n_features=10, n_informative=5, random_state=0, class_sep=0.6)
    return X[:1000], y[:1000], X[1000:2500], y[1000:2500], X[2500:], y[2500:]


def test_platt_matches_sklearn_sigmoid_prefit():
    """caltrain's Platt is the plain logistic MLE; scikit-learn's sigmoid uses Platt's smoothed targets
    ((n+ + 1) / (n+ + 2), 1 / (n- + 2)): the two agree to O(1/N) on probabilities."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.svm import LinearSVC

    X_fit, y_fit, X_cal, y_cal, X_test, _ = _binary_problem()
    svm = LinearSVC(C=0.5).fit(X_fit, y_fit)  # scores, not probabilities: they need calibrating
    ours = CalibratedClassifier(svm, "platt").fit(X_cal, y_cal)
    theirs = CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid").fit(X_cal, y_cal)
    p, q = ours.predict_proba(X_test), theirs.predict_proba(X_test)
    assert p.shape == q.shape == (len(X_test), 2)
    assert np.abs(p - q).max() < 5e-3
    sklearn_a = theirs.calibrated_classifiers_[0].calibrators[0].a_  # P = 1 / (1 + exp(a s + b))
    assert ours.calibrator_.a_ == pytest.approx(-sklearn_a, rel=2e-2)


def test_ts_matches_sklearn_temperature_multiclass():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import make_classification
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(3000, n_features=12, n_informative=6, n_classes=4, random_state=1)
    clf = LogisticRegression(C=100.0, max_iter=2000).fit(X[:600], y[:600])  # over-confident on few samples
    ours = CalibratedClassifier(clf, "ts").fit(X[600:2000], y[600:2000])
    theirs = CalibratedClassifierCV(FrozenEstimator(clf), method="temperature").fit(X[600:2000], y[600:2000])
    assert ours.calibrator_.temperature_ > 1.0
    beta = float(theirs.calibrated_classifiers_[0].calibrators[0].beta_)
    assert ours.calibrator_.temperature_ == pytest.approx(1.0 / beta, rel=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X[2000:]), theirs.predict_proba(X[2000:]), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X[2000:]), clf.predict(X[2000:]))  # TS keeps the argmax


def test_calibrated_classifier_held_out_split_string_labels_and_clone():
    from sklearn.linear_model import LogisticRegression

    X_fit, y_fit, *_ = _binary_problem()
    labels = np.array(["neg", "pos"])[y_fit]
    est = CalibratedClassifier(LogisticRegression(), "ts", cv=0.3).fit(X_fit, labels)
    assert list(est.classes_) == ["neg", "pos"] and set(est.predict(X_fit[:20])) <= {"neg", "pos"}
    assert est.predict_proba(X_fit).shape == (len(X_fit), 2)
    assert not hasattr(est.estimator, "classes_")  # the given estimator is cloned, not fitted
    copy = clone(est)
    assert not hasattr(copy, "calibrator_") and copy.get_params()["cv"] == 0.3
    assert est.set_params(estimator__C=2.0, cv=0.5) is est and est.cv == 0.5 and est.estimator.C == 2.0
    with pytest.raises(posthoc.NotFittedError, match="not fitted"):
        CalibratedClassifier(LogisticRegression()).fit(X_fit, y_fit)
    with pytest.raises(ValueError, match="binary"):
        from sklearn.datasets import make_classification

        X3, y3 = make_classification(200, n_classes=3, n_informative=4, random_state=0)
        CalibratedClassifier(LogisticRegression(max_iter=500).fit(X3, y3), "platt").fit(X3, y3)


def test_calibrated_classifier_log_proba_response():
    from sklearn.naive_bayes import GaussianNB

    X_fit, y_fit, X_cal, y_cal, X_test, _ = _binary_problem()
    nb = GaussianNB().fit(X_fit, y_fit)  # no decision_function: log(predict_proba) is the logit
    est = CalibratedClassifier(nb, "ts").fit(X_cal, y_cal)
    z = np.log(np.clip(nb.predict_proba(X_cal), np.finfo(np.float64).tiny, None))
    direct = posthoc.create("ts").fit(z, y_cal)
    assert est.calibrator_.temperature_ == pytest.approx(direct.temperature_)
