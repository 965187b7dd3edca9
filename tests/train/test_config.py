import re

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
        (["model.options.layers=3"],
         r"model 'mlp' got unknown .*model 'cnn' got unknown .*model 'unet' got unknown .*model.name=auto is one of"),
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


# --- bad inputs: malformed YAML, bounds, option types, devices (issue "runs you can trust") ---


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs: [1\nseed: 0\n", "not valid YAML (line 2, column 5): while parsing a flow sequence"),
        ("a: 1\n  b: 2\n", "not valid YAML (line 2, column 4)"),
        ("- 1\n- 2\n", "expected a mapping (key: value lines) at the top level, got list"),
        ("just text\n", "expected a mapping (key: value lines) at the top level, got str"),
        ("!!python/object/apply:os.system [echo]\n", "not valid YAML (line 1, column 1)"),  # safe_load only
    ],
)
def test_malformed_yaml_names_the_file_and_position(tmp_path, text, message):
    from caltrain.train.config import load_yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        build_config(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    with pytest.raises(ConfigError):
        load_yaml(path)


def test_load_yaml_empty_file_directory_and_missing(tmp_path):
    from caltrain.train.config import load_yaml

    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="expected a YAML file, got a directory"):
        load_yaml(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(tmp_path / "bin.yaml")


def test_n_bins_is_bounded_with_the_reason():
    from caltrain.train.config import MAX_BINS

    assert build_config(overrides=[f"eval.n_bins={MAX_BINS}"]).eval.n_bins == MAX_BINS
    with pytest.raises(ConfigError, match=r"eval.n_bins: expected an integer in \[1, 10000\], got 1000000000 \(more bins"):
        build_config(overrides=["eval.n_bins=1000000000"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.name=mlp", "model.options.hidden=0"], "model.options.hidden: Input should be an instance of Sequence"),
        (["model.name=mlp", "model.options.hidden=[a]"], "model.options.hidden: Input should be a valid integer"),
        (["loss.name=focal", "loss.options.gamma=abc"], "loss.options.gamma: Input should be a valid number"),
        (["data.options.train_size=abc"], "data.options.train_size: Input should be a valid integer"),
        (["seed=4294967296"], "seed: Input should be less than or equal to 2147483647"),
        (["device=cudax"], "device: expected 'auto', 'cpu', 'mps' or 'cuda[:N]', got 'cudax'"),
        (["device=cuda:x"], "device: expected 'auto', 'cpu', 'mps' or 'cuda[:N]'"),
    ],
)
def test_option_values_are_checked_against_the_factory_annotations(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config(overrides=overrides)


def test_option_values_that_fit_pass_unchanged():
    cfg = build_config(overrides=["model.name=mlp", "model.options.hidden=[8, 8]", "loss.name=focal",
                                  "loss.options.gamma=3", "seed=2147483647"])
    assert cfg.model.options == {"hidden": [8, 8]} and cfg.loss.options == {"gamma": 3}


def test_check_device(monkeypatch):
    import torch

    from caltrain.train.config import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for device in ("auto", "cpu"):
        check_device(build_config(overrides=[f"device={device}"]))
    for device in ("cuda", "cuda:3", "mps"):
        with pytest.raises(ConfigError, match=rf"device: '{device}' is not available .*available here: auto, cpu$"):
            check_device(build_config(overrides=[f"device={device}"]))
    with pytest.raises(ConfigError, match="precision: 'fp16' needs a CUDA device"):
        check_device(build_config(overrides=["precision=fp16"]))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device(build_config(overrides=["device=cuda:1", "precision=bf16"]))
    with pytest.raises(ConfigError, match=r"'cuda:2' is not available \(2 CUDA GPU\(s\) visible\); .*cuda:0, cuda:1"):
        check_device(build_config(overrides=["device=cuda:2"]))
