"""Proof that the objective protocol holds: ONE generic training loop runs every registered objective.

The loop has no per-objective code. It asks the objective how many outputs the model needs (``num_outputs``),
hands ``forward`` exactly the extra inputs listed in ``requires`` (dataset ``indices``, the ``model``, the
``inputs``), makes the inputs require gradients when ``needs_input_grad``, calls ``on_epoch_start`` and
``on_epoch_end`` (with validation logits when ``needs_validation``), and checks that the training loss goes down
and that the objective's state round-trips through ``state_dict()``. The trainer is built on this loop.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from caltrain import losses

K, D, N_TRAIN, N_VAL, BATCH, EPOCHS = 3, 6, 96, 48, 32, 6


def _dataset(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(K, D, generator=g) * 1.5
    y = torch.randint(0, K, (N_TRAIN + N_VAL,), generator=g)
    x = centers[y] + torch.randn(N_TRAIN + N_VAL, D, generator=g)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def _model(num_outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 32), nn.Tanh(), nn.Linear(32, num_outputs))


def _extra(objective: losses.Objective, model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> dict:
    available = {"indices": idx, "model": model, "inputs": x}
    return {key: available[key] for key in objective.requires}


def train_generic(objective: losses.Objective, model: nn.Module, train, val, *, epochs: int = EPOCHS):
    """The generic loop; returns the mean training loss of every epoch."""
    (x_train, y_train), (x_val, y_val) = train, val
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    order = torch.Generator().manual_seed(1)
    history = []
    for epoch in range(epochs):
        model.train()
        objective.train()
        objective.on_epoch_start(epoch)
        total = torch.zeros(())
        perm = torch.randperm(N_TRAIN, generator=order)
        for start in range(0, N_TRAIN, BATCH):
            idx = perm[start:start + BATCH]
            x, y = x_train[idx], y_train[idx]
            if objective.needs_input_grad:
                x = x.detach().requires_grad_(True)
            logits = model(x)
            loss = objective(logits, y, **_extra(objective, model, x, idx))
            assert loss.shape == () and torch.isfinite(loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        history.append(float(total) / N_TRAIN)
        model.eval()
        if objective.needs_validation:
            with torch.no_grad():
                objective.on_epoch_end(epoch, val_logits=model(x_val), val_labels=y_val)
        else:
            objective.on_epoch_end(epoch)
    return history


@pytest.fixture(scope="module")
def data():
    return _dataset()


@pytest.mark.parametrize("name", losses.names())
def test_generic_loop_decreases_the_loss_and_state_round_trips(name, data):
    train, val = data
    objective = losses.create(name, num_classes=K, num_samples=N_TRAIN)
    assert objective.requires <= losses.REQUIREMENTS
    assert objective.num_outputs in (K, K + 1)
    assert objective.num_outputs == K + int(objective.has_abstention)
    model = _model(objective.num_outputs)
    assert model(train[0][:2]).shape == (2, objective.num_outputs)

    history = train_generic(objective, model, train, val)
    assert history[-1] < history[0], history

    # per-sample state is keyed by dataset index: its first dimension is the training-set size
    state = objective.state_dict()
    for key in objective.sample_state:
        assert state[key].shape[0] == N_TRAIN, key

    # a fresh objective loaded from the state computes the same loss as the trained one
    clone = losses.create(name, num_classes=K, num_samples=N_TRAIN)
    clone.load_state_dict({k: v.clone() for k, v in state.items()})
    for key, value in clone.state_dict().items():
        assert torch.equal(value, state[key]), key
    objective.eval()
    clone.eval()
    x, y, idx = train[0][:BATCH], train[1][:BATCH], torch.arange(BATCH)
    results = []
    for obj in (objective, clone):
        xi = x.detach().requires_grad_(True) if obj.needs_input_grad else x
        results.append(obj(model(xi), y, **_extra(obj, model, xi, idx)))
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.parametrize("name", [n for n in losses.names()
                                  if not losses.create(n, num_classes=K, num_samples=N_TRAIN).requires
                                  - {"indices"}])
def test_callable_with_indices_keyword(name):
    objective = losses.create(name, num_classes=K, num_samples=N_TRAIN)
    logits = torch.randn(5, objective.num_outputs)
    loss = objective(logits, torch.tensor([0, 1, 2, 0, 1]), indices=torch.tensor([3, 7, 11, 2, 50]))
    assert loss.shape == () and torch.isfinite(loss)
