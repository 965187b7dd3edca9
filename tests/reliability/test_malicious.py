"""Run directories are data, never code: a crafted ``checkpoint.pt`` or ``best.pt`` is refused without running.

Every payload below would create the file ``pwned`` if unpickled with ``weights_only=False``; each test checks
that the file does not exist afterwards, and that the refusal is one line naming the file (exit status 2).
"""

from __future__ import annotations

import io
import os
import pickle
import textwrap

import pytest
import torch

from caltrain.cli.main import main
from caltrain.train.checkpoint import load_checkpoint
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir
from caltrain.train.trainer import train


class OpenFile:
    """Unpickling it opens (creates) ``path`` for writing."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class System:
    """Unpickling it runs a shell command that creates ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))


class Exec:
    """Unpickling it runs Python source that creates ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def _torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def payloads(target: str, valid: dict) -> dict[str, bytes]:
    """Files that would create ``target`` when unpickled; ``valid`` is a real checkpoint to hide them in."""
    return {
        "open, top level": _torch_bytes(OpenFile(target)),
        "os.system, top level": _torch_bytes(System(target)),
        "exec, top level": _torch_bytes(Exec(target)),
        "open, inside a valid checkpoint's history": _torch_bytes({**valid, "history": [OpenFile(target)]}),
        "os.system, inside a valid checkpoint's model": _torch_bytes({**valid, "model": System(target)}),
        "os.system, legacy (non-zip) torch format": _torch_bytes({**valid, "best": System(target)},
                                                                 _use_new_zipfile_serialization=False),
        "open, plain pickle (not a torch file)": pickle.dumps(OpenFile(target)),
        "os.system, plain pickle protocol 0": pickle.dumps(System(target), protocol=0),
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run selecting its best validation epoch (so ``best.pt`` is read at the end)."""
    root = tmp_path_factory.mktemp("finished")
    cfg = build_config(base={
        "data": {"name": "synthetic", "options": {"train_size": 128, "val_size": 64, "test_size": 64, "dim": 4},
                 "batch_size": 64},
        "model": {"name": "mlp", "options": {"hidden": [16]}}, "epochs": 2, "quiet": True,
        "eval": {"posthoc": ["ts"], "select": "best_val_loss"}, "optim": {"lr": 0.05},
    })
    train(cfg, root)
    return root


def _incomplete_copy(finished, dest):
    """A copy of the finished run without ``summary.json``: resuming it goes straight to the end of the run."""
    import shutil

    shutil.copytree(finished, dest)
    (dest / "summary.json").unlink()
    return RunDir(dest)


def test_every_payload_is_refused_by_load_checkpoint(tmp_path, finished):
    valid = load_checkpoint(RunDir(finished).checkpoint)
    pwned = tmp_path / "pwned"
    for name, data in payloads(str(pwned), valid).items():
        path = tmp_path / "checkpoint.pt"
        path.write_bytes(data)
        with pytest.raises(ValueError) as err:
            load_checkpoint(path)
        message = str(err.value)
        assert not pwned.exists(), f"{name}: the payload ran"
        assert str(path) in message and "\n" not in message, (name, message)


@pytest.mark.parametrize("payload", ["open", "os.system", "exec"])
def test_resume_refuses_a_crafted_checkpoint(tmp_path, finished, capsys, payload):
    run = _incomplete_copy(finished, tmp_path / "run")
    pwned = tmp_path / "pwned"
    evil = {"open": OpenFile, "os.system": System, "exec": Exec}[payload](str(pwned))
    run.checkpoint.write_bytes(_torch_bytes({**load_checkpoint(run.checkpoint), "rng": evil}))
    assert main(["train", "--resume", str(run.root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert not pwned.exists()
    assert str(run.checkpoint) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run.is_complete()


def test_end_of_run_refuses_a_crafted_best_pt(tmp_path, finished, capsys):
    run = _incomplete_copy(finished, tmp_path / "run")
    pwned = tmp_path / "pwned"
    run.best.write_bytes(_torch_bytes({"model": System(str(pwned)), "epoch": 1}))
    assert main(["train", "--resume", str(run.root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert not pwned.exists()
    assert str(run.best) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run.is_complete()


@pytest.mark.parametrize("content", ["empty", "truncated", "text", "a list", "missing keys", "old numpy RNG"])
def test_unreadable_checkpoint_is_one_clear_error(tmp_path, finished, capsys, content):
    run = _incomplete_copy(finished, tmp_path / "run")
    real = run.checkpoint.read_bytes()
    valid = load_checkpoint(run.checkpoint)
    import numpy as np

    data = {
        "empty": b"",
        "truncated": real[: len(real) // 2],
        "text": b"this is not a checkpoint\n",
        "a list": _torch_bytes([1, 2, 3]),
        "missing keys": _torch_bytes({"model": valid["model"]}),
        # what caltrain 0.1.0 wrote: NumPy's RNG state as a tuple holding an array (needs a NumPy global)
        "old numpy RNG": _torch_bytes({**valid, "rng": {**valid["rng"], "numpy": np.random.get_state()}}),
    }[content]
    run.checkpoint.write_bytes(data)
    assert main(["train", "--resume", str(run.root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(run.checkpoint) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bench_does_not_run_a_crafted_checkpoint_of_its_suite(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent("""
        description: one tiny run
        seeds: [0]
        base: {epochs: 1, quiet: true, eval: {posthoc: []},
               data: {batch_size: 64, options: {train_size: 128, val_size: 64, test_size: 64, dim: 4}}}
        datasets:
          synthetic: {data: {name: synthetic}, model: {name: mlp, options: {hidden: [16]}}}
        objectives:
          ce: {loss: {name: ce}}
    """))
    out = tmp_path / "out"
    assert main(["bench", str(suite), "--out", str(out), "--no-report"]) == 0
    run = RunDir(out / "runs" / "synthetic__ce__seed0")
    assert run.is_complete()
    run.summary.unlink()  # an interrupted run: the suite resumes it from its checkpoint
    pwned = tmp_path / "pwned"
    run.checkpoint.write_bytes(_torch_bytes({**load_checkpoint(run.checkpoint), "history": System(str(pwned))}))
    capsys.readouterr()
    assert main(["bench", str(suite), "--out", str(out), "--no-report"]) != 0  # the run failed: exit 1
    err = capsys.readouterr().err
    assert not pwned.exists()
    assert str(run.checkpoint) in err and "Traceback" not in err and not run.is_complete()
