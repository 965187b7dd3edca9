import pytest

from caltrain.train.config import ConfigError, apply_overrides, build_config, config_to_dict, parse_override


def test_overrides_parse_yaml_scalars_and_lists():
    assert parse_override("optim.lr=0.05") == (["optim", "lr"], 0.05)
    assert parse_override("eval.posthoc=[ts, ats]") == (["eval", "posthoc"], ["ts", "ats"])
    assert parse_override("--optim.nesterov=true") == (["optim", "nesterov"], True)
    tree = apply_overrides({"loss": {"name": "ce"}}, ["loss.options.gamma=3"])
    assert tree == {"loss": {"name": "ce", "options": {"gamma": 3}}}


def test_yaml_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\noptim: {name: adamw, lr: 0.001}\nloss: {name: focal, options: {gamma: 2}}\n")
    cfg = build_config(f, overrides=["optim.lr=0.002"])
    assert (cfg.epochs, cfg.optim.name, cfg.optim.lr, cfg.loss.options) == (7, "adamw", 0.002, {"gamma": 2})
    # round trip through the dict form saved in config.yaml
    assert build_config(base=config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", r"optim.lrr: unknown key \(valid keys here: name, lr, momentum"),
        ("optim.lr=-1", "optim.lr: Input should be greater than 0"),
        ("epochs=0", "epochs: Input should be greater than or equal to 1"),
        ("optim.name=lion", "optim.name: Input should be 'sgd', 'adamw', 'muon' or 'sam'"),
        ("device=gpu", "device: .*expected 'auto', 'cpu'"),
        ("optim.momentum=0", None),
        ("bogus=1", r"bogus: unknown key \(valid keys here: data, model, loss"),
        ("optim=3", "optim: Input should be a valid dictionary"),
        ("novalue", "expected KEY=VALUE"),
    ],
)
def test_validation_errors_name_the_key(override, message):
    if message is None:
        build_config(overrides=[override])
        return
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=[override])


def test_nesterov_needs_momentum():
    with pytest.raises(ConfigError, match="nesterov=true needs optim.momentum > 0"):
        build_config(overrides=["optim.momentum=0", "optim.nesterov=true"])


def test_config_is_frozen():
    cfg = build_config()
    with pytest.raises(Exception):
        cfg.epochs = 3
