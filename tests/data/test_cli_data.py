"""``caltrain data``: listing, one entry, JSON, unknown names."""

import json

from caltrain import data
from caltrain.cli.main import main


def test_lists_every_dataset_with_options(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    for name in data.names():
        assert f"\n{name} " in "\n" + out
    assert "separation=4.0" in out and "imbalance_factor=None" in out


def test_json_for_one_dataset(capsys):
    assert main(["data", "digits", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (entry,) = payload["entries"]
    assert entry["name"] == "digits" and entry["options"]["label_noise"] == 0.1
    assert "root" not in entry["options"] and payload["common_options"]["seed"] == 0


def test_unknown_dataset_is_a_user_error(capsys):
    assert main(["data", "cifar"]) == 2
    assert "unknown dataset 'cifar'" in capsys.readouterr().err
