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


# --- every name and option key is checked when the configuration is built ---------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("eval.posthoc=[ts, tss]", r"eval.posthoc: expected one of .*got 'tss'; did you mean 'ts'"),
        ("loss.name=focl", r"loss.name: expected one of .*'ce'.*got 'focl'; did you mean 'focal'"),
        ("data.name=synthtic", r"data.name: .*got 'synthtic'; did you mean 'synthetic'"),
        ("model.name=mpl", r"model.name: expected one of 'auto', .*got 'mpl'; did you mean 'mlp'"),
        ("optim.name=adamww", r"optim.name: .*\(got 'adamww'\); did you mean 'adamw'"),
        ("optim.sam_base=sgdd", r"optim.sam_base: .*did you mean 'sgd'"),
        ("schedule.name=multistpe", r"schedule.name: .*did you mean 'multistep'"),
        ("eval.abstention=with_unkown", r"eval.abstention: expected None or one of .*did you mean 'with_unknown'"),
        ("optim.lrr=1", r"optim.lrr: unknown key .*did you mean 'lr'"),
    ],
)
def test_unknown_names_fail_when_built_with_the_closest_name(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=[override])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loss.name=focal", "loss.options.gama=3"],
         r"loss.options: loss 'focal' got unknown parameter\(s\) 'gama'; "
         r"valid parameters: gamma.*did you mean 'gamma'"),
        (["loss.options.num_classes=3"], "loss.options.num_classes: set by caltrain"),
        (["model.name=mlp", "model.options.hiden=[8]"],
         r"model.options: model 'mlp' got unknown parameter\(s\) 'hiden'; valid parameters: hidden.*did you mean"),
        (["model.options.num_classes=3"], "model.options.num_classes: set by caltrain"),
        (["model.options.depth=3"], r"model 'mlp' got unknown .*model 'cnn' got unknown .*model.name=auto is one of"),
        (["data.options.n_train=3"], r"data.options: dataset 'synthetic' got unknown parameter\(s\) 'n_train'; "
                                     r"valid parameters: .*train_size.*imbalance_factor"),
        (["data.options.root=/x"], "data.options.root: .*set data.root instead"),
    ],
)
def test_option_keys_must_fit_the_factory(overrides, message):
    # a clear ConfigError naming the key and the registry's accepted keywords, not a TypeError at run time
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=overrides)


def test_valid_names_and_options_are_unchanged():
    cfg = build_config(overrides=[
        "loss.name=focal", "loss.options.gamma=3", "model.options.widths=[8, 16]",  # auto: a cnn option
        "data.name=digits", "data.options.imbalance_factor=10", "data.options.seed=1",  # create()'s own options
        "eval.posthoc=[ts, vector]", "eval.abstention=renormalized", "optim.name=sam", "schedule.name=cosine",
    ])
    assert cfg.loss.options == {"gamma": 3} and cfg.model.options == {"widths": [8, 16]}
    assert cfg.eval.posthoc == ("ts", "vector") and cfg.eval.abstention == "renormalized"
    assert build_config(overrides=["model.name=auto"]).model.name == "auto"


def test_check_data_checks_each_dataset_once(monkeypatch, tmp_path):
    import caltrain.data
    from caltrain.train.config import check_data

    calls = []
    monkeypatch.setattr(caltrain.data, "check_available", lambda name, root, **o: calls.append((name, root, o)))
    cfgs = [build_config(overrides=[f"seed={s}", f"loss.name={loss}"]) for s in range(3) for loss in ("ce", "brier")]
    check_data(cfgs + [build_config(overrides=["data.options.train_size=100"])])
    assert calls == [("synthetic", None, {}), ("synthetic", None, {"train_size": 100})]
    monkeypatch.undo()
    empty = tmp_path / "nothing"
    with pytest.raises(FileNotFoundError, match="dataset 'cifar10': missing .*data folder searched"):
        check_data([build_config(overrides=["data.name=cifar10", f"data.root={empty}", "data.options.download=false"])])
