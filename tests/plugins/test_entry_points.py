"""Entry-point plugins: loaded lazily, once, registered under the entry point's name; failures name the distribution.

Each case runs in a subprocess whose ``sys.path`` holds a fake distribution (a ``*.dist-info`` folder with
``entry_points.txt``), so the registries of the other tests never see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

MODULE = '''
import torch
from torch import nn

from caltrain.data.splits import DatasetSplits, Split, channel_stats
from caltrain.posthoc.temperature import TemperatureScaling
from caltrain.losses.cross_entropy import CrossEntropy


def blobs(*, root=None, seed=0, size=60):
    g = torch.Generator().manual_seed(seed)
    def split(n):
        y = torch.randint(0, 2, (n,), generator=g)
        return Split((torch.randn(n, 3, generator=g) + 2.0 * y[:, None]).float(), y.long())
    train, val, test = split(size), split(size), split(size)
    mean, std = channel_stats(train.x)
    return DatasetSplits(name="blobs", train=train, val=val, test=test, num_classes=2, input_shape=(3,),
                         mean=mean, std=std, kind="features")


def linear(*, num_classes, in_channels=3, input_shape=None):
    return nn.Linear(input_shape[0], num_classes)


def my_ce(*, num_classes, scale=1.0):
    return CrossEntropy(num_classes=num_classes)


class MyTS(TemperatureScaling):
    pass
'''


def _distribution(tmp_path: Path, entry_points: str, module: str = MODULE, dist: str = "fake_plugin") -> Path:
    site = tmp_path / "site"
    (site / f"{dist}-1.0.dist-info").mkdir(parents=True)
    (site / f"{dist}-1.0.dist-info" / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (site / f"{dist}-1.0.dist-info" / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (site / f"{dist}_mod.py").write_text(module)
    return site


def _run(site: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(site)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)


ALL_FOUR = """
[caltrain.datasets]
blobs = fake_plugin_mod:blobs
[caltrain.models]
linear = fake_plugin_mod:linear
[caltrain.losses]
my_ce = fake_plugin_mod:my_ce
[caltrain.calibrators]
my_ts = fake_plugin_mod:MyTS
"""


def test_entry_points_join_the_four_registries_lazily(tmp_path):
    site = _distribution(tmp_path, ALL_FOUR)
    result = _run(site, """
        import sys
        import caltrain
        from caltrain import data, losses, models, posthoc
        assert "fake_plugin_mod" not in sys.modules  # import caltrain loads no plugin
        assert "blobs" in data.names() and "linear" in models.names()
        assert "my_ce" in losses.names() and "my_ts" in posthoc.names()
        assert "fake_plugin_mod" in sys.modules
        assert losses.LOSSES.get("my_ce").registry_name == "my_ce"
        assert posthoc.create("my_ts").name == "my_ts"
        assert models.MODELS.origin("linear") == "distribution 'fake_plugin'"
        ds = data.create("blobs", seed=1, size=20)
        model = models.create("linear", num_classes=2, input_shape=(3,))
        assert model(ds.train.x).shape == (20, 2)
        from caltrain.train.config import build_config
        cfg = build_config(overrides=["data.name=blobs", "model.name=linear", "loss.name=my_ce",
                                      "loss.options.scale=2.0", "eval.posthoc=[my_ts]"])
        assert cfg.model.name == "linear"
        print("OK")
    """)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_a_plugin_that_fails_to_import_names_its_distribution(tmp_path):
    site = _distribution(tmp_path, "[caltrain.models]\nbroken = fake_plugin_mod:linear\n",
                         module="raise RuntimeError('boom')\n")
    result = _run(site, """
        from caltrain import models
        for _ in range(2):  # every later question fails the same way
            try:
                models.names()
            except ImportError as err:
                print(err)
            else:
                raise SystemExit("no error")
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert "'fake_plugin'" in lines[0] and "'broken'" in lines[0] and "RuntimeError: boom" in lines[0]


def test_a_plugin_clashing_with_a_built_in_name_raises(tmp_path):
    site = _distribution(tmp_path, "[caltrain.models]\nmlp = fake_plugin_mod:linear\n")
    result = _run(site, """
        from caltrain import models
        models.create("mlp", num_classes=2, input_shape=(3,))
    """)
    assert result.returncode != 0
    assert "'mlp'" in result.stderr and "already registered by caltrain" in result.stderr
    assert "distribution 'fake_plugin'" in result.stderr


def test_the_cli_reports_a_broken_plugin_in_one_line(tmp_path):
    site = _distribution(tmp_path, "[caltrain.models]\nbad = fake_plugin_mod\n")  # a module, not a factory
    result = _run(site, """
        import sys
        from caltrain.cli.main import main
        sys.exit(main(["models"]))
    """)
    assert result.returncode == 2, result.stderr
    assert "module:factory" in result.stderr and "'fake_plugin'" in result.stderr
    assert "Traceback" not in result.stderr
