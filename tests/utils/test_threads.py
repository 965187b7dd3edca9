"""caltrain.utils.threads: the cores a process may use, the threads: auto policy, MAC counts, the one-thread scope."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from caltrain.utils import threads as T


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    T.set_budget(None)


def test_small_models_get_one_thread_whatever_the_cores():
    for cores in (1, 2, 64):
        n, reason = T.choose_threads(3e7, cores=cores)
        assert n == 1 and "small model" in reason


def test_large_models_get_one_thread_per_macs_per_thread_up_to_the_caps():
    macs = 16 * T.MACS_PER_THREAD
    assert T.choose_threads(macs, cores=64)[0] == 16
    assert T.choose_threads(macs, cores=2)[0] == 2
    n, reason = T.choose_threads(macs, cores=8, busy=6.0)  # six cores busy with others: two free
    assert n == 2 and "load average 7.0" in reason
    assert T.choose_threads(macs, cores=8, budget=3)[0] == 3
    n, reason = T.choose_threads(macs, cores=8, env=1)
    assert n == 1 and "OMP_NUM_THREADS" in reason
    assert T.choose_threads(macs, cores=8, busy=100.0)[0] == 1  # never below one
    # more work never gets fewer threads
    counts = [T.choose_threads(m * T.MACS_PER_THREAD, cores=8)[0] for m in (0.5, 1, 2, 3, 7, 8, 100)]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 8


def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert T._cgroup_quota(tmp_path) == pytest.approx(1.5)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert T._cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert T._cgroup_quota(tmp_path) == pytest.approx(2.0)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert T._cgroup_quota(tmp_path) is None
    assert T._cgroup_quota(tmp_path / "absent") is None


def test_usable_cores_is_the_affinity_mask_capped_by_the_quota(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(T, "_cgroup_quota", lambda: None)
    assert T.usable_cores() == 4
    monkeypatch.setattr(T, "_cgroup_quota", lambda: 1.5)
    assert T.usable_cores() == 2
    monkeypatch.setattr(T, "_cgroup_quota", lambda: 0.2)
    assert T.usable_cores() == 1


def test_busy_cores_ignores_the_load_of_a_narrower_container(monkeypatch):
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(T, "usable_cores", lambda: 8)
    assert T.busy_cores() == pytest.approx(4.0)  # this process is one of the five
    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    assert T.busy_cores() == 0.0


def test_count_macs_matches_a_hand_count_and_leaves_the_model_alone():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 7 * 7, 10),
    )
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    macs = T.count_macs(model, (3, 16, 16))
    expected = 16 * 16 * 8 * 3 * 9 + 7 * 7 * 8 * 4 * 9 + 8 * 7 * 7 * 10
    assert macs == expected
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BatchNorm stats untouched
    # at least the parameter count (an embedding-only model has no counted layer)
    emb = nn.Sequential(nn.Flatten(), nn.Identity())
    emb.weight = nn.Parameter(torch.zeros(100))
    assert T.count_macs(emb, (4,)) == 100


def test_resolve_threads_applies_and_records_each_setting():
    model = nn.Linear(32, 10)  # 320 MACs a sample, 330 parameters: the count is the larger
    info = T.resolve_threads("auto", model=model, input_shape=(32,), batch_size=128)
    assert info["threads"] == 1 == torch.get_num_threads() and info["setting"] == "auto"
    assert info["macs_per_step"] == 3 * 128 * 330 and "small model" in info["reason"] and info["cores"] >= 1
    info = T.resolve_threads(2, model=model)
    assert info["threads"] == 2 == torch.get_num_threads() and info["reason"] == "set in the configuration"
    torch.set_num_threads(3)
    info = T.resolve_threads(0, model=model)
    assert info["threads"] == 3 == torch.get_num_threads()
    info = T.resolve_threads("auto", model=model, device="meta")  # not a CPU run: torch's default stays
    assert info["threads"] == 3 == torch.get_num_threads() and "default" in info["reason"]


def test_budget_caps_the_auto_choice(monkeypatch):
    monkeypatch.setattr(T, "usable_cores", lambda: 16)
    monkeypatch.setattr(T, "busy_cores", lambda: 0.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    big = nn.Linear(4096, 4096)
    assert T.resolve_threads("auto", model=big, input_shape=(4096,), batch_size=512)["threads"] == 16
    T.set_budget(2)
    info = T.resolve_threads("auto", model=big, input_shape=(4096,), batch_size=512)
    assert info["threads"] == 2 and "budget" in info["reason"]


def test_prepare_threads_builds_auto_runs_on_one_thread():
    torch.set_num_threads(2)
    T.prepare_threads("auto", "cpu")
    assert torch.get_num_threads() == 1
    T.prepare_threads(3)
    assert torch.get_num_threads() == 3
    T.prepare_threads(0)
    assert torch.get_num_threads() == 3


def test_single_thread_scope_restores_the_count_even_on_error():
    torch.set_num_threads(2)
    with T.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), T.single_thread():
        raise RuntimeError
    assert torch.get_num_threads() == 2


def test_macs_per_thread_separates_the_measured_models():
    # the docstring's figures: an MLP step and a digits CNN step single-threaded, resnet20 on 32x32 not
    assert math.floor(3e7 / T.MACS_PER_THREAD) == 0 and math.floor(2.3e8 / T.MACS_PER_THREAD) == 0
    assert T.choose_threads(1.6e10, cores=2)[0] == 2
