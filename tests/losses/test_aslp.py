"""ASLP (``aslp``): the per-image α update, its clamps, its state and its protocol hooks.

The sequence test compares with an independent float64 NumPy reference written from the authors' code
(Carlisle-Liu/ASLP, ``main_ASLP.py``, ``train_ASLP_MC``; ``utils.py``, ``compute_bce_individual`` and
``compute_entropy_individual``): α per image name starting at 0, updated after each batch when the 1-based epoch
is > 5 with al + η((−2·BCE + CAL)/β + λ·min((1 − cur_acc) − β·al, 0)), then α < 0 → 0, α ≥ 1/(2β) → 1/(2β) − 0.01;
cur_acc is the validation accuracy measured after the previous epoch. Their code is not run (it needs CUDA, cv2
and the DUTS files).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.losses.adaptive_stochastic_label_perturbation import calibration_gradient
from caltrain.losses.self_calibrating_binary_cross_entropy import sc_bce


def _make(**hp):
    return losses.create("aslp", num_classes=2, num_samples=6, **hp)


def _stats(acc: float, pixels: float = 1000.0):
    return {"correct": torch.tensor(acc * pixels, dtype=torch.float64), "pixels": torch.tensor(pixels)}


def _batch(n=3, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, 4, 4, generator=g, dtype=torch.float64) * scale
    y = (torch.rand(n, 1, 4, 4, generator=g, dtype=torch.float64) > 0.5).double()
    return z, y


def test_g_is_the_mean_signed_logit_margin_over_beta():
    z, y = _batch()
    g = calibration_gradient(z.reshape(3, -1), y.reshape(3, -1), 2.0)
    expected = ((2 * y - 1) * z).reshape(3, -1).mean(1) / 2.0
    torch.testing.assert_close(g, expected, rtol=1e-10, atol=1e-12)


def test_one_update_on_hand_made_numbers_equals_the_formula():
    obj = _make(start_epoch=1, eta=0.01, lam=10.0, beta=2.0)
    obj.on_epoch_end(0, val_stats=_stats(0.9))
    obj.on_epoch_start(1)
    obj.alpha[2] = 0.1
    z = torch.tensor([[[[1.0, -2.0]]], [[[0.5, 0.5]]]], dtype=torch.float64)  # [2, 1, 1, 2]
    y = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]], dtype=torch.float64)
    obj.train()
    obj(z, y, indices=torch.tensor([2, 4]))
    g = np.array([(1.0 + 2.0) / 2, (-0.5 + 0.5) / 2]) / 2.0  # mean (2y − 1) z / β
    a = np.array([0.1, 0.0])
    r = np.minimum((1 - 0.9) - 2.0 * a, 0.0)  # [−0.1, 0]
    expected = a + 0.01 * (g + 10.0 * r)  # [0.1 + 0.01·(0.75 − 1), 0]
    np.testing.assert_allclose(obj.alpha[[2, 4]].numpy(), expected, rtol=1e-12)
    assert obj.alpha[[0, 1, 3, 5]].eq(0).all()


def test_clamps_hold():
    obj = _make(start_epoch=1, eta=1.0, lam=0.0, beta=2.0)
    obj.on_epoch_end(0, val_stats=_stats(0.5))
    obj.on_epoch_start(1)
    z = torch.tensor([8.0, -8.0]).double().reshape(2, 1, 1, 1)
    y = torch.tensor([1.0, 1.0]).double().reshape(2, 1, 1, 1)  # g = +4, −4
    obj(z, y, indices=torch.tensor([0, 1]))
    assert obj.alpha[0].item() == pytest.approx(1 / (2 * 2.0) - 0.01)  # ≥ 1/(2β) → 1/(2β) − 0.01
    assert obj.alpha[1].item() == 0.0  # < 0 → 0


def test_no_update_before_start_epoch_in_eval_mode_or_without_validation():
    obj = _make(start_epoch=2)
    z, y = _batch()
    obj.on_epoch_start(1)
    obj(z, y, indices=torch.tensor([0, 1, 2]))
    assert obj.alpha.eq(0).all()
    with pytest.raises(ValueError, match="no validation pixel accuracy"):
        obj.on_epoch_start(2)
    obj.on_epoch_end(1, val_stats=_stats(0.8))
    obj.on_epoch_start(2)
    obj.eval()
    obj(z, y, indices=torch.tensor([0, 1, 2]))
    assert obj.alpha.eq(0).all()
    obj.train()
    obj(z, y, indices=torch.tensor([0, 1, 2]))
    assert obj.alpha.ne(0).any()


def test_loss_is_sc_bce_at_the_images_alpha():
    obj = _make()
    obj.alpha.copy_(torch.tensor([0.0, 0.24, 0.0, 0.1, 0.0, 0.0], dtype=torch.float64))
    z, y = _batch()
    idx = torch.tensor([1, 3, 0])
    obj.generator = torch.Generator().manual_seed(5)
    got = obj(z, y, indices=idx)
    expected = sc_bce(z, y, alpha=obj.alpha[idx], beta=2.0, generator=torch.Generator().manual_seed(5))
    assert float(got) == float(expected)


def test_validation_statistics_and_accuracies():
    obj = _make(variant="mei")
    z = torch.tensor([1.0, -1.0, 0.0, -3.0]).reshape(1, 1, 2, 2)
    y = torch.tensor([1.0, 1.0, 1.0, 0.2]).reshape(1, 1, 2, 2)
    stats = obj.validation_statistics(z, y)
    assert float(stats["correct"]) == 3.0 and float(stats["pixels"]) == 4.0
    obj.on_epoch_end(0, val_stats=stats)
    obj.on_epoch_end(1, val_stats=_stats(0.5))
    assert float(obj.val_accuracy) == 0.5 and float(obj.best_accuracy) == 0.75
    summary = obj.epoch_summary()
    assert {"alpha_mean", "alpha_q50", "alpha_q90", "alpha_at_zero", "val_pixel_accuracy"} <= set(summary)
    assert summary["best_val_pixel_accuracy"] == 0.75


def test_mei_update_uses_the_accuracy_drop():
    obj = _make(variant="mei", start_epoch=1, eta=0.01, lam=2.0)
    obj.on_epoch_end(0, val_stats=_stats(0.9))
    obj.on_epoch_end(0, val_stats=_stats(0.8))  # A_val = 0.8, A_ref = 0.9
    obj.on_epoch_start(1)
    z = torch.tensor([2.0]).double().reshape(1, 1, 1, 1)
    obj(z, torch.ones(1, 1, 1, 1, dtype=torch.float64), indices=torch.tensor([5]))
    assert obj.alpha[5].item() == pytest.approx(0.01 * (2.0 / 2.0 + 2.0 * (0.8 - 0.9)), rel=1e-12)


def test_state_dict_round_trip_is_exact():
    a = _make(start_epoch=1)
    a.on_epoch_end(0, val_stats=_stats(0.7))
    a.on_epoch_start(1)
    z, y = _batch()
    a(z, y, indices=torch.tensor([0, 2, 5]))
    saved = {k: v.clone() for k, v in a.state_dict().items()}
    assert list(saved) == ["epoch", "val_accuracy", "best_accuracy", "alpha"] and saved["alpha"].dtype == torch.float64
    b = _make(start_epoch=1)
    b.load_state_dict(saved)
    b.on_epoch_start(1)  # the trainer calls it again on resume
    for k, v in saved.items():
        assert torch.equal(b.state_dict()[k], v)
    z2, y2 = _batch(seed=1)
    a(z2, y2, indices=torch.tensor([0, 1, 2]))
    b(z2, y2, indices=torch.tensor([0, 1, 2]))
    assert torch.equal(a.alpha, b.alpha)
    assert "alpha" not in {name for name, _ in a.named_buffers()}  # rank-local, not broadcast by DDP


def _authors_reference(batches, accs, *, beta, eta, lbd, n_images):
    """float64 NumPy transcription of train_ASLP_MC's α bookkeeping (epochs 1-based, update when epoch > 5)."""
    alpha = np.zeros(n_images)
    cur_acc = None
    for epoch, epoch_batches in enumerate(batches, start=1):
        for z, y, names in epoch_batches:
            al = alpha[names].copy()
            if epoch > 5:
                s = np.clip(1 / (1 + np.exp(-z)), 1e-7, 1 - 1e-7)
                bce_all = (-y * np.log(s) - (1 - y) * np.log(1 - s)).reshape(len(names), -1).mean(1)
                cal_all = (-np.log(s * (1 - s))).reshape(len(names), -1).mean(1)
                al = al + eta * ((-2 * bce_all + cal_all) / beta + lbd * np.minimum((1 - cur_acc) - beta * al, 0))
                for i, name in enumerate(names):
                    if al[i] < 0:
                        alpha[name] = 0.0
                    elif al[i] >= 1 / (2 * beta):
                        alpha[name] = 1 / (2 * beta) - 0.01
                    else:
                        alpha[name] = al[i]
        cur_acc = accs[epoch - 1]
    return alpha


def test_sequence_with_repeated_images_equals_the_authors_update():
    n_images, epochs, beta, eta, lbd = 6, 9, 2.0, 0.002, 2000.0
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(n_images)
        epoch_batches = []
        for names in (order[:3], order[3:]):
            z = rng.normal(size=(3, 1, 4, 4)) * 3
            y = (rng.random((3, 1, 4, 4)) > 0.4).astype(np.float64)
            epoch_batches.append((z, y, names))
        batches.append(epoch_batches)
    accs = [0.80, 0.85, 0.88, 0.9, 0.91, 0.93, 0.92, 0.95, 0.96]
    expected = _authors_reference(batches, accs, beta=beta, eta=eta, lbd=lbd, n_images=n_images)

    obj = losses.create("aslp", num_classes=2, num_samples=n_images, beta=beta, eta=eta, lam=lbd)
    assert obj.start_epoch == 5  # 0-based epoch 5 = the authors' 1-based epoch 6 (their `epoch > 5`)
    obj.train()
    for epoch, epoch_batches in enumerate(batches):
        obj.on_epoch_start(epoch)
        for z, y, names in epoch_batches:
            obj(torch.from_numpy(z), torch.from_numpy(y), indices=torch.from_numpy(names))
        obj.on_epoch_end(epoch, val_stats=_stats(accs[epoch], pixels=100.0))
    assert (expected > 0).any() and (expected < 0.24).any()
    np.testing.assert_allclose(obj.alpha.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("indices", "error", "match"),
    [
        (torch.tensor([0, 6]), ValueError, r"indices: expected integers in \[0, 6\), got values in \[0, 6\]"),
        (torch.tensor([-1, 0]), ValueError, r"indices: expected integers in \[0, 6\)"),
        (torch.tensor([0]), ValueError, r"indices: expected shape \[2\]"),
        (torch.tensor([0.0, 1.0]), TypeError, "indices: expected an integer tensor"),
        (None, ValueError, "needs the dataset indices"),
    ],
)
def test_bad_indices_raise_and_write_nothing(indices, error, match):
    obj = _make(start_epoch=1)
    obj.on_epoch_end(0, val_stats=_stats(0.5))
    obj.on_epoch_start(1)
    z, y = _batch(n=2)
    with pytest.raises(error, match=match):
        obj(z, y, indices=indices)
    assert obj.alpha.eq(0).all()


def test_bad_labels_and_hyperparameters():
    obj = _make()
    z, _ = _batch(n=2)
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 1\]"):
        obj(z, torch.full((2, 1, 4, 4), 2.0, dtype=torch.float64), indices=torch.tensor([0, 1]))
    for hp in ({"variant": "mx"}, {"start_epoch": 0}, {"eta": 0.0}, {"lam": -1.0}, {"beta": 0.0}):
        with pytest.raises(ValueError, match=next(iter(hp))):
            _make(**hp)
    with pytest.raises(ValueError, match="num_samples"):
        losses.create("aslp", num_classes=2)


def test_the_trainer_refuses_a_dense_objective_on_a_classification_run_before_training(tmp_path):
    from caltrain.train.config import build_config
    from caltrain.train.trainer import train

    config = build_config(overrides=["loss.name=aslp", "epochs=1", "quiet=true", "threads=1"])
    with pytest.raises(ValueError, match=r"loss.name: 'aslp' trains dense_binary outputs, but data.name 'synthetic' is a "
                                         r"classification task"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
