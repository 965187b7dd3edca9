"""Shared test configuration: deterministic seeds, one torch thread per xdist worker, headless matplotlib."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
