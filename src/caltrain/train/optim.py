"""Optimisers: SGD, AdamW, Muon (with an auxiliary AdamW) and SAM wrapping a base optimiser.

- SGD and AdamW are ``torch.optim``'s.
- :class:`Muon` (Jordan et al. 2024, https://kellerjordan.github.io/posts/muon/; Liu et al. 2025 arXiv 2502.16982)
  applies the same update as ``torch.optim.Muon`` -- momentum ``B <- mu B + (1-mu) g`` (as a lerp), Nesterov
  look-ahead, Newton-Schulz orthogonalisation in bfloat16 with coefficients (3.4445, -4.775, 2.0315), learning rate
  scaled by sqrt(max(1, rows/cols)), decoupled weight decay -- but to every hidden weight of two or more dimensions,
  convolution filters flattened to ``[out, in*kh*kw]`` (``torch.optim.Muon`` accepts 2-D parameters only).
  Biases, normalisation parameters and the classifier head are updated by AdamW inside the same optimiser, so one
  learning-rate schedule drives both (the usual Muon recipe).
- :class:`SAM` (Foret et al. 2021, arXiv 2010.01412): ascend to ``w + rho g/||g||``, take the gradient there,
  return to ``w`` and step the base optimiser with that gradient.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

from caltrain.train.config import OptimConfig

__all__ = ["Muon", "SAM", "build_optimizer", "newton_schulz_orthogonalize"]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz_orthogonalize(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximate ``U V^T`` of the SVD ``g = U S V^T`` of a 2-D tensor by a quintic Newton-Schulz iteration.

    ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, started from ``g / ||g||_F``, in bfloat16, transposed so
    the Gram matrix is the smaller one. The singular values come out near (not at) 1, which is what Muon needs.
    """
    a, b, c = NS_COEFFICIENTS
    x = g.bfloat16()
    transpose = g.size(0) > g.size(1)
    if transpose:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if transpose else x


class Muon(torch.optim.Optimizer):
    """Muon for hidden weights (``ndim >= 2``) plus AdamW for every other parameter, in one optimiser.

    Each parameter group carries ``use_muon``. Muon groups use ``lr``, ``momentum``, ``nesterov``,
    ``weight_decay``, ``ns_steps``; AdamW groups use ``lr``, ``betas``, ``eps``, ``weight_decay``.
    Use :func:`build_optimizer` to split a model's parameters.
    """

    def __init__(self, param_groups: list[dict[str, Any]]) -> None:
        defaults = dict(
            lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0, ns_steps=5, betas=(0.9, 0.999), eps=1e-8,
            use_muon=True,
        )
        super().__init__(param_groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D401 - torch signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_group(group)
            else:
                self._adamw_group(group)
        return loss

    def _muon_group(self, group: dict[str, Any]) -> None:
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.reshape(p.shape[0], -1)
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(g)
            buf = state["momentum_buffer"]
            buf.lerp_(g, 1 - mu)
            update = g.lerp(buf, mu) if group["nesterov"] else buf
            update = newton_schulz_orthogonalize(update, group["ns_steps"])
            rows, cols = g.shape
            p.mul_(1 - lr * wd)
            p.add_(update.view_as(p).to(p.dtype), alpha=-lr * math.sqrt(max(1.0, rows / cols)))

    def _adamw_group(self, group: dict[str, Any]) -> None:
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.float64)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = float(state["step"])
            state["exp_avg"].lerp_(p.grad, 1 - b1)
            state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (state["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(eps)
            p.mul_(1 - lr * wd)
            p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1**t))


class SAM(torch.optim.Optimizer):
    """Sharpness-Aware Minimisation around a base optimiser (Foret et al. 2021, arXiv 2010.01412).

    Use: backward at ``w``; :meth:`first_step` moves to ``w + e``, ``e = rho g / ||g||_2`` (global norm); backward
    again there; :meth:`second_step` restores ``w`` and steps the base optimiser with the second gradient.
    The base optimiser's state and parameter groups are this optimiser's (one schedule drives both).

    Args:
        params: the parameters.
        base: a ``torch.optim.Optimizer`` class (e.g. ``torch.optim.SGD``).
        rho: the neighbourhood radius (0.05 in the paper for CIFAR).
        **base_kwargs: the base optimiser's arguments (lr, momentum, ...).
    """

    def __init__(self, params: Iterable, base: type[torch.optim.Optimizer], *, rho: float = 0.05, **base_kwargs: Any):
        if rho <= 0:
            raise ValueError(f"rho: expected a positive radius, got {rho!r}")
        super().__init__(params, dict(rho=rho, **base_kwargs))
        self.base_optimizer = base(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self) -> None:
        """Perturb the weights to ``w + rho g/||g||`` (remembering ``w``); call after the first backward."""
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = p.grad * scale.to(p.grad.dtype)
                p.add_(e)
                self.state[p]["sam_e"] = e

    @torch.no_grad()
    def second_step(self) -> None:
        """Return to ``w`` and step the base optimiser with the gradient taken at ``w + e``."""
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state[p].pop("sam_e", None)
                if e is not None:
                    p.sub_(e)
        self.base_optimizer.step()

    def step(self, closure=None):  # pragma: no cover - the trainer drives first/second step explicitly
        raise RuntimeError("SAM needs two gradient evaluations: call first_step() and second_step()")

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)


def _classifier_params(model: nn.Module) -> set[int]:
    """Ids of the parameters of the last ``nn.Linear`` (the classifier head)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return {id(p) for p in last.parameters()} if last is not None else set()


def _decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights of >= 2 dimensions only; biases and normalisation parameters are not decayed."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names, over ``model``'s trainable parameters.

    Weight decay applies to weights with two or more dimensions (biases and BatchNorm parameters are not decayed,
    as in the reference CIFAR recipes). For ``muon``, hidden weights (``ndim >= 2``, except the last ``nn.Linear``,
    the classifier) use Muon at ``lr``; everything else uses AdamW at ``muon_adamw_lr``.
    """
    if cfg.name == "sgd":
        return torch.optim.SGD(
            _decay_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
    if cfg.name == "adamw":
        return torch.optim.AdamW(_decay_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    if cfg.name == "sam":
        if cfg.sam_base == "sgd":
            return SAM(
                _decay_groups(model, cfg.weight_decay), torch.optim.SGD, rho=cfg.sam_rho, lr=cfg.lr,
                momentum=cfg.momentum, nesterov=cfg.nesterov,
            )
        return SAM(_decay_groups(model, cfg.weight_decay), torch.optim.AdamW, rho=cfg.sam_rho, lr=cfg.lr, betas=cfg.betas)
    # muon
    head = _classifier_params(model)
    hidden = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2 and id(p) not in head]
    rest = [p for p in model.parameters() if p.requires_grad and (p.ndim < 2 or id(p) in head)]
    groups = [
        dict(params=hidden, use_muon=True, lr=cfg.lr, momentum=cfg.muon_momentum, nesterov=True, weight_decay=cfg.weight_decay),
        dict(params=rest, use_muon=False, lr=cfg.muon_adamw_lr, betas=cfg.betas, weight_decay=0.0),
    ]
    return Muon([g for g in groups if g["params"]])
