"""posthoc.load trusts nothing in the file: every fitted field of every calibrator, corrupted one at a time."""

from __future__ import annotations

import copy
import functools
import json
import pickle
import warnings

import pytest
import torch

from caltrain import posthoc

from .references import sample_logits

ALL = posthoc.names()
BINARY = [n for n in ALL if posthoc.CALIBRATORS.get(n).binary_only]

#: Fields that must be > 0 (temperatures) and >= 0 (counts, bin values, weights, beta's a and b, iterations).
POSITIVE = {"temperature_", "temperatures_"}
NONNEGATIVE = {
    "n_iter_", "ece_", "edges_", "piece_sizes_", "weights_", "bin_values_", "bin_counts_",
    "thresholds_x_", "thresholds_y_", "reg_lambda_", "reg_mu_", "reg_nu_", "cv_folds_", "cv_nll_", "max_gain_",
    "train_nll_",
}
NONNEGATIVE_BY_NAME = {("beta", "a_"), ("beta", "b_")}
#: Fields bounded above by 1 (probabilities, bin values, mixture weights, knots, edges, an ECE).
AT_MOST_ONE = {"ece_", "edges_", "weights_", "bin_values_", "thresholds_x_", "thresholds_y_"}


@functools.lru_cache(maxsize=None)  # one fit per calibrator for the whole module (the tests do not modify it)
def _fitted(name: str):
    z, y = sample_logits(400, 2 if name in BINARY else 4, seed=11)
    z = 2.0 * z
    if name in BINARY:
        z = z[:, 1] - z[:, 0]
    options = {"min_piece_size": 20, "n_pieces": 4} if name == "ats" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return posthoc.create(name, **options).fit(z, y), z


def _saved(name: str, tmp_path):
    cal, z = _fitted(name)
    path = tmp_path / f"{name}.json"
    cal.save(path)
    return cal, z, path, json.loads(path.read_text())


def _fields(name: str) -> list[str]:
    return list(posthoc.CALIBRATORS.get(name)._fitted)


def _cases():
    for name in ALL:
        for key in _fields(name):
            yield name, key


def _is_array(value) -> bool:
    return isinstance(value, list)


def _set_first(value, new):
    """``value`` (a number or nested list) with its first number replaced by ``new``."""
    if not _is_array(value):
        return new
    out = copy.deepcopy(value)
    inner = out
    while isinstance(inner[0], list):
        inner = inner[0]
    inner[0] = new
    return out


def _corruptions(name: str, key: str, value) -> dict[str, object]:
    """Every corruption of ``fitted[key]`` that must be rejected."""
    out: dict[str, object] = {
        "nan": _set_first(value, float("nan")),
        "inf": _set_first(value, float("inf")),
        "-inf": _set_first(value, float("-inf")),
        "string": "1.5",
        "null": None,
        "dict": {"value": 1.0},
        "bool": True,
    }
    if _is_array(value):
        out["scalar"] = 1.0
        out["too short"] = value[:-1] if len(value) > 1 else []
        out["extra dim"] = [value, value]
        out["ragged"] = [value[0], [value[0]]] if isinstance(value[0], list) else [value, 1.0]
    else:
        out["list"] = [value, value]
    if key in POSITIVE:
        out["negative"] = _set_first(value, -1.0)
        out["zero"] = _set_first(value, 0.0)
    if key in NONNEGATIVE or (name, key) in NONNEGATIVE_BY_NAME:
        out["negative"] = _set_first(value, -1.0)
    if key in AT_MOST_ONE:
        out["above one"] = _set_first(value, 1.5)
    if key in ("n_iter_", "cv_folds_"):
        out["fraction"] = 2.5
    if posthoc.CALIBRATORS.get(name)._fields[key].optional:
        del out["null"]  # an optional field may be null (not applicable, or a file from before it existed)
    if posthoc.CALIBRATORS.get(name)._fields[key].infinite:
        del out["inf"]  # +inf is a valid value there (linear maps: reg_lambda_ = inf, off-diagonals fixed at 0)
    return out


def _loads_with_error(path, state, *match: str) -> None:
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError) as info:
        posthoc.load(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for m in match:
        assert m in message, (m, message)


@pytest.mark.parametrize(("name", "key"), list(_cases()))
def test_every_corrupted_field_is_a_clear_error(name, key, tmp_path):
    cal, z, path, state = _saved(name, tmp_path)
    for label, bad in _corruptions(name, key, state["fitted"][key]).items():
        corrupted = copy.deepcopy(state)
        corrupted["fitted"][key] = bad
        try:
            _loads_with_error(path, corrupted, f"fitted[{key!r}]")
        except AssertionError as err:  # name the corruption that got through
            raise AssertionError(f"{name}: fitted[{key!r}] = {label} ({bad!r}): {err}") from err
    missing = copy.deepcopy(state)
    del missing["fitted"][key]
    _loads_with_error(path, missing, "missing fitted attribute", key)
    # and the same through load_state_dict in memory (no file): the message starts with "state"
    corrupted = copy.deepcopy(state)
    corrupted["fitted"][key] = float("nan") if not _is_array(state["fitted"][key]) else "x"
    fresh = posthoc.create(name, **cal.get_params())
    with pytest.raises(ValueError, match=rf"^state: fitted\['{key}'\]"):
        fresh.load_state_dict(corrupted)
    assert not hasattr(fresh, "n_classes_")  # nothing was set: the calibrator stays unfitted


@pytest.mark.parametrize("name", ALL)
def test_untouched_file_loads_and_predicts_identically(name, tmp_path):
    cal, z, path, _ = _saved(name, tmp_path)
    loaded = posthoc.load(path)
    assert type(loaded) is type(cal) and loaded.get_params() == cal.get_params()
    assert torch.equal(loaded.predict_proba(z), cal.predict_proba(z))


@pytest.mark.parametrize("name", ALL)
def test_bad_n_classes_format_name_and_hyperparameters(name, tmp_path):
    _, _, path, state = _saved(name, tmp_path)
    for bad in (1, 0, -3, 2.5, "4", None, float("nan"), True):
        s = copy.deepcopy(state)
        s["fitted"]["n_classes_"] = bad
        _loads_with_error(path, s, "fitted['n_classes_']")
    if name not in BINARY:  # a different class count than the arrays were fitted for
        s = copy.deepcopy(state)
        s["fitted"]["n_classes_"] = 7
        if any(_is_array(state["fitted"][k]) for k in _fields(name)) and name not in ("ets", "ats"):
            _loads_with_error(path, s, "expected shape", "7 classes")
    else:
        s = copy.deepcopy(state)
        s["fitted"]["n_classes_"] = 3
        _loads_with_error(path, s, "fitted['n_classes_']", "binary")
    for bad in ("caltrain.posthoc/0", None, 1):
        s = copy.deepcopy(state)
        s["format"] = bad
        _loads_with_error(path, s, "not a caltrain calibrator file", "format")
    other = "ts" if name != "ts" else "vector"
    for bad in ("no-such-calibrator", None, 3):
        s = copy.deepcopy(state)
        s["name"] = bad
        _loads_with_error(path, s, "name")
    s = copy.deepcopy(state)
    s["fitted"] = [1, 2]
    _loads_with_error(path, s, "fitted: expected a dict")
    s = copy.deepcopy(state)
    s["hyperparameters"]["no_such_option"] = 1
    _loads_with_error(path, s, "hyperparameters", "no_such_option")
    s = copy.deepcopy(state)
    s["hyperparameters"] = "t_min=1"
    _loads_with_error(path, s, "hyperparameters: expected a dict")
    # a state of another calibrator into this one
    fresh = posthoc.create(name)
    wrong = copy.deepcopy(state)
    wrong["name"] = other
    with pytest.raises(ValueError, match=f"name: saved for calibrator '{other}', not '{name}'"):
        fresh.load_state_dict(wrong)


@pytest.mark.parametrize(("name", "key", "value"), [
    ("ts", "temperature_", -1.0),  # would silently invert the predicted class
    ("ts", "temperature_", 0.0),  # would give NaN probabilities
    ("ts", "temperature_", 5000.0),  # beyond this calibrator's own t_max (1000)
    ("ts-grid-ece", "temperature_", 50.0),  # outside the grid 0.1..10
    ("ets", "temperature_", 7.0),  # beyond t_max = 5
    ("ets", "weights_", [0.5, 0.5, 0.5]),  # not a mixture
    ("ats", "temperatures_", [1.0, -2.0, 1.0, 1.0]),
    ("ats", "edges_", [0.9, 0.5, 0.7]),  # edges not sorted
    ("histogram", "bin_values_", "rows"),
])
def test_named_semantic_corruptions(name, key, value, tmp_path):
    _, _, path, state = _saved(name, tmp_path)
    state["fitted"][key] = value
    _loads_with_error(path, state, f"fitted[{key!r}]")


def test_hyperparameter_out_of_range_names_the_file(tmp_path):
    _, _, path, state = _saved("ts", tmp_path)
    state["hyperparameters"]["t_min"] = -1.0
    _loads_with_error(path, state, "hyperparameters: t_min")


def test_isotonic_knots_and_values_must_match(tmp_path):
    _, _, path, state = _saved("isotonic", tmp_path)
    state["fitted"]["thresholds_y_"] = [row[:-1] for row in state["fitted"]["thresholds_y_"]]
    _loads_with_error(path, state, "thresholds_y_", "shape of thresholds_x_")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    """A pickle (or a torch file) is refused as 'not JSON', and no unpickler is ever called."""

    def refuse(*args, **kwargs):
        raise AssertionError("posthoc.load must never unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    cal, z, path, state = _saved("ts", tmp_path)
    pickled = tmp_path / "cal.pkl"
    pickled.write_bytes(pickle.dumps(state))
    with pytest.raises(ValueError, match=r"cal\.pkl: not a caltrain calibrator file \(not JSON"):
        posthoc.load(pickled)
    other_json = tmp_path / "other.json"
    other_json.write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match=r"other\.json: not a caltrain calibrator file"):
        posthoc.load(other_json)
    with pytest.raises(ValueError, match="is a directory"):
        posthoc.load(tmp_path)
    assert torch.equal(posthoc.load(path).predict_proba(z), cal.predict_proba(z))  # JSON loads with pickle gone


def test_every_calibrator_declares_every_fitted_field():
    for name in ALL:
        cls = posthoc.CALIBRATORS.get(name)
        assert set(cls._fitted) <= set(cls._fields), name
