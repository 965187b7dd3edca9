"""threads: auto in a run (meta.json), the running accuracy and the run's ETA on the progress display."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from caltrain.train import progress as P
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir
from caltrain.train.trainer import Trainer

TINY = {"data": {"name": "synthetic", "options": {"train_size": 256, "val_size": 128, "test_size": 128, "dim": 8},
                 "batch_size": 32},
        "model": {"name": "mlp"}, "epochs": 2, "quiet": True, "eval": {"posthoc": []}, "optim": {"lr": 0.05}}


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class Recorder:
    def __init__(self):
        self.calls = []

    def start_epoch(self, epoch, total_epochs, steps):
        self.calls.append(("start", epoch, total_epochs, steps))

    def update(self, steps_done, loss, accuracy):
        self.calls.append(("update", steps_done, loss, accuracy))

    def end_epoch(self, record):
        self.calls.append(("end", record))

    def close(self):
        pass


def test_threads_default_is_auto_and_meta_records_the_choice(tmp_path):
    config = build_config(base=TINY)
    assert config.threads == "auto"
    torch.set_num_threads(2)
    trainer = Trainer(config, tmp_path)
    trainer.fit(Recorder())
    meta = json.loads(RunDir(tmp_path).meta.read_text())
    threads = meta["threads"]
    assert threads["setting"] == "auto" and threads["threads"] == 1 == torch.get_num_threads()
    assert "small model" in threads["reason"] and threads["cores"] >= 1
    # the MLP's forward MACs per sample (8 -> hidden -> hidden -> 2 linear layers), three products a step, batch 32
    model = trainer.model
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert threads["macs_per_step"] == max(3 * 32 * linear, 3 * 32 * meta["num_parameters"])


def test_threads_values_are_checked():
    with pytest.raises(ValueError, match="threads: expected 'auto', 0 .* got 'many'"):
        build_config(base={"threads": "many"})
    with pytest.raises(ValueError, match="threads: expected"):
        build_config(base={"threads": True})
    assert build_config(base={"threads": 0}).threads == 0


def test_progress_gets_the_running_accuracy_not_nan(tmp_path):
    rec = Recorder()
    Trainer(build_config(base=TINY), tmp_path).fit(rec)
    updates = [c for c in rec.calls if c[0] == "update"]
    ends = [c[1] for c in rec.calls if c[0] == "end"]
    assert updates and all(0.0 <= c[3] <= 1.0 and not math.isnan(c[3]) for c in updates)
    # the last update of an epoch is the accuracy over all of its training batches: the epoch's train accuracy
    last_of_epoch = [c for i, c in enumerate(rec.calls) if c[0] == "update" and rec.calls[i + 1][0] == "end"]
    for update, record in zip(last_of_epoch, ends):
        assert update[1] == 256 // 32
        assert update[3] == pytest.approx(record["train"]["accuracy"], abs=1e-12)


def test_run_clock_estimates_the_time_left_from_the_share_done():
    t = [100.0]
    clock = P.RunClock(now=lambda: t[0])
    assert clock.seconds_left is None and clock.describe() == "run 0%"
    clock.start_epoch(2, 10, 50)  # a resumed run: epochs 0 and 1 were done by another process
    t[0] = 140.0
    clock.update(25)  # half an epoch of the 8 left in 40 s
    assert clock.fraction == pytest.approx(2.5 / 10)
    assert clock.seconds_left == pytest.approx(40 * 7.5 / 0.5)
    assert clock.describe() == "run 25%, about 10 min 00 s left"
    clock.start_epoch(9, 10, 50)
    clock.update(50)
    assert clock.fraction == 1.0 and clock.describe() == "run 100%"


def test_epoch_lines_end_with_the_share_of_the_run_and_the_time_left():
    stream = io.StringIO()
    lines = P._Lines(stream)
    for epoch in range(2):
        lines.start_epoch(epoch, 2, 4)
        lines.update(4, 0.5, 0.75)
        lines.end_epoch({"epoch": epoch + 1, "train": {"loss": 0.5}, "time_s": 0.1})
    out = stream.getvalue().splitlines()
    assert out[0].startswith("epoch 1 | loss 0.5000") and "run 50%, about" in out[0]
    assert out[1].endswith("| run 100%")


def test_progress_can_be_turned_off_for_a_process():
    try:
        P.set_enabled(False)
        assert type(P.make_progress(quiet=False)) is P._Silent
    finally:
        P.set_enabled(True)
    assert type(P.make_progress(quiet=False)) is not P._Silent


def test_format_duration():
    assert [P.format_duration(s) for s in (0.04, 9.96, 42, 60, 3599, 3600, 86399)] == [
        "0.0 s", "10.0 s", "42 s", "1 min 00 s", "59 min 59 s", "1 h 00 min", "23 h 59 min"]


def test_rich_bar_shows_accuracy_and_the_run_share(capsys):
    pytest.importorskip("rich")
    bar = P._RichBar()
    for epoch in range(2):
        bar.start_epoch(epoch, 2, 4)
        for step in range(4):
            bar.update(step + 1, 0.5, 0.75)
        bar.end_epoch({"epoch": epoch + 1, "train": {"loss": 0.5}, "val": {"accuracy": 0.8, "ece": 0.05},
                       "time_s": 0.1})
    bar.close()
    out = capsys.readouterr()
    text = out.out + out.err
    assert "acc 0.750" in text and "run 100%" in text and "val ece 0.0500" in text
