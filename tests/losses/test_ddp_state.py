"""Per-sample objective state is rank-local: in ``state_dict()`` exactly as before, never a DDP-broadcast buffer.

Today's layout of every objective's ``state_dict()`` (keys, order, dtypes, shapes) was recorded from the code
before the state moved out of ``buffers()``; checkpoints and the trainer's resume read these keys. A module
holding Socrates, wrapped in DistributedDataParallel with ``broadcast_buffers=True`` on two gloo processes, keeps
each rank's rows (a plain buffer, the control, loses them to rank 0's), and the trainer's
``merge_sample_state`` still merges the ranks' rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from caltrain import losses
from caltrain.losses.abstention_base import ema_step
from caltrain.losses.base import Objective

K, N = 3, 5

#: ``[(key, dtype, shape)]`` of ``losses.create(name, num_classes=3, num_samples=5).state_dict()``, recorded from
#: the code before per-sample state left ``buffers()`` (commit e969409).
EXPECTED = {
    "adafocal": [("epoch", "int64", ()), ("gammas", "float64", (15,)), ("edges", "float64", (16,))],
    "brier": [("epoch", "int64", ())],
    "calmo": [("epoch", "int64", ())],
    "calmo_flat": [("epoch", "int64", ())],
    "calmo_robust": [("epoch", "int64", ())],
    "cals": [("epoch", "int64", ()), ("lambd", "float64", (3,)), ("rho", "float64", (3,)),
             ("prev_constraints", "float64", (3,)), ("has_prev", "bool", ())],
    "ce": [("epoch", "int64", ())],
    "dca": [("epoch", "int64", ())],
    "dece": [("epoch", "int64", ())],
    "aslp": [("epoch", "int64", ()), ("val_accuracy", "float64", ()), ("best_accuracy", "float64", ()),
             ("alpha", "float64", (5,))],
    "bce": [("epoch", "int64", ())],
    "bce_ls": [("epoch", "int64", ())],
    "disturb_label": [("epoch", "int64", ())],
    "sc_bce": [("epoch", "int64", ())],
    "deep_gamblers": [("epoch", "int64", ())],
    "dual_focal": [("epoch", "int64", ())],
    "ecp": [("epoch", "int64", ())],
    "flsd53": [("epoch", "int64", ())],
    "focal": [("epoch", "int64", ())],
    "gence": [("epoch", "int64", ()), ("prior_ema", "float64", (3,)), ("ema_steps", "int64", ())],
    "logitnorm": [("epoch", "int64", ())],
    "ls": [("epoch", "int64", ())],
    "mbls": [("epoch", "int64", ())],
    "mdca": [("epoch", "int64", ())],
    "mmce": [("epoch", "int64", ())],
    "poly1": [("epoch", "int64", ())],
    "sat": [("epoch", "int64", ()), ("targets", "float32", (5, 3)), ("seen", "bool", (5,))],
    "socrates": [("epoch", "int64", ()), ("targets", "float32", (5, 3)), ("seen", "bool", (5,))],
}


def _layout(objective: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(k, str(v.dtype).removeprefix("torch."), tuple(v.shape)) for k, v in objective.state_dict().items()]


@pytest.mark.parametrize("name", losses.names())
def test_state_dict_layout_is_unchanged_and_sample_state_is_not_a_buffer(name):
    objective = losses.create(name, num_classes=K, num_samples=N)
    if name in EXPECTED:
        assert _layout(objective) == EXPECTED[name]
    buffers = {key for key, _ in objective.named_buffers()}
    for key in objective.sample_state:
        assert key not in buffers, f"{name}.{key} is a buffer: DDP would broadcast rank 0's copy"
        assert key in objective.state_dict()
        assert getattr(objective, key).shape[0] == N


def _steps(objective: Objective, *, steps: int = 4, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    objective.train()
    objective.on_epoch_start(0)
    for _ in range(steps):
        idx = torch.randperm(N, generator=g)[:3]
        z = torch.randn(3, K + 1, generator=g)
        y = torch.randint(0, K, (3,), generator=g)
        objective(z, y, indices=idx)


@pytest.mark.parametrize("name", ["socrates", "sat"])
def test_state_dict_values_are_the_ema_tables(name):
    objective = losses.create(name, num_classes=K, num_samples=N)
    _steps(objective)
    # the same steps on plain tensors, through the pure function
    targets, seen = torch.zeros(N, K), torch.zeros(N, dtype=torch.bool)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        idx = torch.randperm(N, generator=g)[:3]
        z = torch.randn(3, K + 1, generator=g)
        y = torch.randint(0, K, (3,), generator=g)
        ema_step(targets, seen, z[:, :K], y, idx, momentum=objective.momentum, update=True)
    state = objective.state_dict()
    assert list(state) == ["epoch", "targets", "seen"]
    assert torch.equal(state["targets"], targets) and torch.equal(state["seen"], seen)
    assert state["targets"].dtype == torch.float32 and state["seen"].dtype == torch.bool
    assert not state["targets"].requires_grad


def test_load_state_dict_round_trip_is_exact_and_in_place():
    a = losses.create("socrates", num_classes=K, num_samples=N)
    _steps(a)
    saved = {k: v.clone() for k, v in a.state_dict().items()}
    b = losses.create("socrates", num_classes=K, num_samples=N)
    table = b.targets
    assert b.load_state_dict(saved) is not None
    assert b.targets is table  # copied in place, as into a buffer
    for key, value in saved.items():
        assert torch.equal(b.state_dict()[key], value)
    # both continue identically
    z, y, idx = torch.randn(2, K + 1), torch.tensor([0, 2]), torch.tensor([1, 4])
    assert torch.equal(a(z, y, indices=idx), b(z, y, indices=idx))
    assert torch.equal(a.targets, b.targets) and torch.equal(a.seen, b.seen)
    # assign=True takes the checkpoint's tensors, like buffers
    c = losses.create("socrates", num_classes=K, num_samples=N)
    c.load_state_dict(saved, assign=True)
    assert c.targets is saved["targets"]


def test_load_state_dict_reports_missing_unexpected_and_mismatched_local_state():
    obj = losses.create("sat", num_classes=K, num_samples=N)
    with pytest.raises(RuntimeError, match='Missing key.*"targets", "seen"'):
        obj.load_state_dict({"epoch": torch.tensor(0)})
    result = obj.load_state_dict({"epoch": torch.tensor(0)}, strict=False)  # reported, not raised, as buffers are
    assert result.missing_keys == ["targets", "seen"] and result.unexpected_keys == []
    state = obj.state_dict()
    with pytest.raises(RuntimeError, match="Unexpected key.*extra"):
        obj.load_state_dict({**state, "extra": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="size mismatch for targets"):
        obj.load_state_dict({**state, "targets": torch.zeros(N + 1, K)})
    # inside a parent module, under a prefix
    parent = nn.Sequential(nn.Linear(2, 2), obj)
    keys = list(parent.state_dict())
    assert keys == ["0.weight", "0.bias", "1.epoch", "1.targets", "1.seen"]
    fresh = nn.Sequential(nn.Linear(2, 2), losses.create("sat", num_classes=K, num_samples=N))
    fresh.load_state_dict(parent.state_dict())
    with pytest.raises(RuntimeError, match='Missing key.*"1.targets"'):
        fresh.load_state_dict({k: v for k, v in parent.state_dict().items() if k != "1.targets"})


def test_to_moves_and_casts_local_state_like_buffers():
    obj = losses.create("socrates", num_classes=K, num_samples=N)
    _steps(obj)
    before = obj.targets.clone()
    obj.double()
    assert obj.targets.dtype == torch.float64 and obj.seen.dtype == torch.bool
    assert torch.equal(obj.targets, before.double())
    obj.to(torch.float32)
    assert obj.targets.dtype == torch.float32
    parent = nn.ModuleDict({"loss": obj})
    parent.to("meta")  # a device move through the parent, without a GPU
    assert obj.targets.device.type == "meta" and obj.seen.device.type == "meta" and obj.epoch.device.type == "meta"
    if torch.cuda.is_available():
        other = losses.create("socrates", num_classes=K, num_samples=N).cuda()
        assert other.targets.is_cuda and other.seen.is_cuda


def test_a_subclass_registering_its_sample_state_as_a_buffer_gets_local_state():
    class Visits(Objective):
        requires = frozenset({"indices"})
        sample_state = ("visits",)

        def __init__(self) -> None:
            super().__init__(num_classes=2)
            self.register_buffer("visits", torch.zeros(4))
            self.register_buffer("total", torch.zeros(()))

        def forward(self, logits, labels, *, indices):
            self.visits[indices] += 1
            return logits.sum()

    obj = Visits()
    assert [k for k, _ in obj.named_buffers()] == ["epoch", "total"]
    assert list(obj.state_dict()) == ["epoch", "total", "visits"]
    with pytest.raises(KeyError, match="already exists"):
        obj.register_local_state("total", torch.zeros(1))
    with pytest.raises(TypeError):
        obj.register_local_state("other", [1.0])


# ------------------------------------------------------------------------------------------------ two processes


class _Net(nn.Module):
    """What Lightning and Hugging Face wrap: a module that holds the objective as a submodule."""

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        self.linear = nn.Linear(4, K + 1)
        self.objective = objective

    def forward(self, x, y, idx):
        return self.objective(self.linear(x), y, indices=idx)


def _plain_buffer_socrates(num_samples: int) -> Objective:
    """The control: Socrates with its table forced into ``buffers()`` (the layout before this change)."""
    obj = losses.create("socrates", num_classes=K, num_samples=num_samples)
    for name in ("targets", "seen"):
        tensor = obj.__dict__.pop(name)
        obj._local_state.remove(name)
        nn.Module.register_buffer(obj, name, tensor)
    return obj


def _ddp_worker(rank: int, world: int, init: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    from caltrain.train.distributed import DistContext, merge_sample_state

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        n = 16
        own = torch.arange(rank, n, world)  # rank r sees samples r, r + world, ...
        result = {}
        for label, make in (("local", lambda: losses.create("socrates", num_classes=K, num_samples=n)),
                            ("buffer", lambda: _plain_buffer_socrates(n))):
            torch.manual_seed(0)
            net = _Net(make())
            ddp = DDP(net)  # default: buffers synced from rank 0 before every forward (broadcast_buffers=True)
            opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
            obj = net.objective
            snapshot = {k: getattr(obj, k).clone() for k in obj.sample_state}
            g = torch.Generator().manual_seed(100 + rank)
            written = {}
            for step in range(3):
                idx = own[torch.randperm(own.numel(), generator=g)[:4]]
                x, y = torch.randn(4, 4, generator=g), torch.randint(0, K, (4,), generator=g)
                loss = ddp(x, y, idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
                for i in idx.tolist():
                    written[i] = obj.targets[i].clone()
            rows = sorted(written)
            kept = all(torch.equal(obj.targets[i], written[i]) for i in rows) and bool(obj.seen[rows].all())
            foreign = [i for i in range(n) if i % world != rank]
            result[label] = {"kept_own_rows": kept, "foreign_rows_seen": int(obj.seen[foreign].sum())}
            if label == "local":
                merge_sample_state({k: getattr(obj, k) for k in obj.sample_state}, snapshot,
                                   DistContext(rank=rank, world_size=world))
                result["merged"] = {k: v.clone() for k, v in obj.state_dict().items()}
                result["written"] = written
        torch.save(result, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_broadcast_buffers_keeps_each_ranks_rows_and_merge_joins_them(tmp_path):
    ctx = mp.get_context("spawn")
    init = f"file://{tmp_path / 'rendezvous'}"
    out = str(tmp_path / "result")
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, init, out)) for r in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
    assert [proc.exitcode for proc in procs] == [0, 0]
    results = {rank: torch.load(f"{out}.{rank}") for rank in (0, 1)}
    for rank in (0, 1):
        assert results[rank]["local"] == {"kept_own_rows": True, "foreign_rows_seen": 0}, rank
    # the control shows what the test detects: with a buffer, rank 1's table is rank 0's after each forward
    assert results[1]["buffer"]["kept_own_rows"] is False and results[1]["buffer"]["foreign_rows_seen"] > 0
    # merge_sample_state (what caltrain's trainer calls once per epoch) joins both ranks' rows on every rank
    merged0, merged1 = results[0]["merged"], results[1]["merged"]
    for key in merged0:
        assert torch.equal(merged0[key], merged1[key]), key
    for rank in (0, 1):
        for i, row in results[rank]["written"].items():
            assert torch.equal(merged0["targets"][i], row) and bool(merged0["seen"][i])


def test_trainer_under_torchrun_merges_the_socrates_table_of_both_ranks(tmp_path):
    """caltrain's own path: the trainer reads ``sample_state`` by name and merges it; every sample is seen."""
    pytest.importorskip("torch.distributed.run")
    from caltrain.train.checkpoint import load_checkpoint
    from caltrain.train.run_dir import RunDir

    env = dict(os.environ, OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "caltrain", "train", "--quiet", "--data", "synthetic", "--model", "mlp",
           "--set", "data.options.train_size=128", "--set", "data.options.val_size=32",
           "--set", "data.options.test_size=32", "--set", "data.options.dim=8", "--set", "data.batch_size=16",
           "--set", "eval.posthoc=[]", "--set", "eval.ood=false", "--loss", "socrates", "--epochs", "1",
           "--out", str(out)]
    proc = subprocess.run(cmd, env=env, timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(RunDir(out).checkpoint)["objective"]
    assert list(state) == ["epoch", "targets", "seen"]
    assert state["targets"].shape[0] == 128
    assert int(state["seen"].sum()) == 128, "the rows of one rank are missing: the ranks' tables were not merged"
