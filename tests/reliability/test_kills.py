"""SIGKILL a training run at random moments, resume it, and get bit for bit the uninterrupted run's results.

Each seed kills the run once at a random moment of training (after a random number of epochs, plus a random
delay: inside an epoch, inside a checkpoint or ``metrics.jsonl`` write, or during the end of the run), then
kills the resumed run again at a random moment, and resumes it to the end. The results (metrics, every
record, logits, calibrators) must equal those of an uninterrupted run, and no temporary file of an atomic write
may be left in the run directory.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from caltrain.utils.io import TEMP_NAME
from tests.reliability.helpers import SMALL, TRAIN, assert_same_results, env, kill_after, metrics_lines, start

EPOCHS = 6
#: Per-sample objective state (socrates' EMA table) and best-epoch selection (``best.pt``) both have to survive.
ARGS = [*SMALL, "--loss", "socrates", "--epochs", str(EPOCHS), "--seed", "3", "--set", "eval.select=best_val_loss"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run([*TRAIN, *ARGS, "--out", str(out)], check=True, env=env(), timeout=300)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_random_kills_resume_bit_identically(tmp_path, reference, seed):
    rng = random.Random(seed)
    run = tmp_path / "run"
    kills = 0
    # The first kill lands at a random moment inside epoch 2 or 3 (a delay below one epoch of the reference run,
    # after 1 or 2 records), so at least 4 epochs remain: a fixed delay let a fast, idle machine finish the run
    # before any kill (a flaky "the run ended before any kill").
    epoch_s = min(r["time_s"] for r in map(json.loads, (reference / "metrics.jsonl").read_text().splitlines()))
    proc = start([*TRAIN, *ARGS, "--out", str(run)])
    kills += kill_after(proc, run, records=rng.randint(1, EPOCHS // 3), delay=rng.uniform(0.0, 0.9 * epoch_s))
    proc = start([*TRAIN, "--resume", str(run)])
    kills += kill_after(proc, run, records=min(metrics_lines(run) + rng.randint(0, 2), EPOCHS),
                        delay=rng.uniform(0.0, 1.0))
    subprocess.run([*TRAIN, "--resume", str(run)], check=True, env=env(), timeout=300)
    assert kills >= 1, "the run ended before any kill"
    print(f"seed {seed}: {kills} kill(s) survived")
    assert_same_results(run, reference)
    leftovers = [p.name for folder in (run, run / "calibrators") for p in folder.iterdir()
                 if TEMP_NAME.fullmatch(p.name)]
    assert not leftovers
