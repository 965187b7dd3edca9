"""``caltrain models``: listing, parameter counts, JSON."""

import json

from caltrain import models
from caltrain.cli.main import main


def test_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.names():
        assert f"\n{name} " in "\n" + out
    assert "shortcut='A'" in out


def test_json_with_parameter_counts(capsys):
    assert main(["models", "resnet20", "wrn28_10", "--json", "--parameters"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries["resnet20"]["parameters"] == 269_722 and entries["wrn28_10"]["parameters"] == 36_479_194
    assert entries["wrn28_10"]["options"] == {"dropout": 0.0}


def test_unknown_model_is_a_user_error(capsys):
    assert main(["models", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
