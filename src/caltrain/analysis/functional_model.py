"""A model seen as a pure function of one flat vector of its trainable parameters, in evaluation mode.

Every curvature quantity in :mod:`caltrain.analysis` is a linear operator on the parameter space
theta in R^P (P = number of trainable parameters). :class:`FunctionalModel` maps between the flat
vectors those operators act on and the model's parameter tensors, and evaluates the model with
``torch.func.functional_call`` at given parameter values, leaving the module itself untouched.
:func:`evaluation_mode` puts the model in eval mode (BatchNorm uses its running statistics and does
not update them, dropout is off) and restores every submodule's own flag afterwards.
:func:`mean_operator` averages a per-chunk operator over an evaluation set, in eval mode.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from caltrain.utils.checks import check_positive_int
from caltrain.utils.modules import eval_mode

__all__ = ["FunctionalModel", "MatVec", "evaluation_mode", "mean_operator"]

#: A symmetric linear operator on flat parameter vectors: v [P] -> A v [P].
MatVec = Callable[[torch.Tensor], torch.Tensor]


#: The eval-mode context manager under its former name (one implementation: :func:`caltrain.utils.modules.eval_mode`).
evaluation_mode = eval_mode


class FunctionalModel:
    """``model`` as a function of its trainable parameters theta (those with ``requires_grad``).

    Attributes:
        names: the trainable parameters' names, in ``named_parameters()`` order.
        primals: their current values, detached (the point theta at which curvature is measured).
        dim: P, the total number of trainable parameters.

    Frozen parameters and buffers (BatchNorm running statistics) are read from the module as they are.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model: expected at least one parameter with requires_grad=True, found none")
        self.model = model
        self.names = tuple(name for name, _ in named)
        self.primals = tuple(p.detach() for _, p in named)
        self._shapes = tuple(p.shape for p in self.primals)
        self._numels = tuple(p.numel() for p in self.primals)
        self.dim = sum(self._numels)

    @property
    def device(self) -> torch.device:
        return self.primals[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.primals[0].dtype

    def __call__(self, params: tuple[torch.Tensor, ...], inputs: torch.Tensor) -> torch.Tensor:
        """The model's output at parameter values ``params`` (a tuple shaped like :attr:`primals`)."""
        return functional_call(self.model, dict(zip(self.names, params)), (inputs,))

    def flatten(self, tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors into one flat vector [P]."""
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Split a flat vector [P] into tensors shaped like the parameters (views, no copy)."""
        if flat.shape != (self.dim,):
            raise ValueError(f"vector: expected shape [{self.dim}] (one entry per trainable parameter), "
                             f"got {tuple(flat.shape)}")
        return tuple(chunk.view(shape) for chunk, shape in zip(flat.split(self._numels), self._shapes))

    def start_vector(self, init: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        """A start vector [P] for an eigensolver: ``init`` (checked, cast) or a seeded standard normal.

        The random vector is drawn on the CPU from its own generator (the same on every device, the
        global RNG untouched); with probability 1 it has a component along the top eigenvector.
        """
        if init is None:
            generator = torch.Generator().manual_seed(int(seed))
            return torch.randn(self.dim, generator=generator, dtype=torch.float64).to(self.device, self.dtype)
        if not isinstance(init, torch.Tensor) or init.shape != (self.dim,):
            shape = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
            raise ValueError(f"init: expected a tensor of shape [{self.dim}] (one entry per trainable "
                             f"parameter), got {shape}")
        return init.detach().to(self.device, self.dtype)

    def leaves(self) -> tuple[torch.Tensor, ...]:
        """Fresh copies of the parameters that require grad (for double backprop without touching ``.grad``)."""
        return tuple(p.detach().clone().requires_grad_(True) for p in self.primals)


def mean_operator(
    model: nn.Module,
    prepare: Callable[[torch.Tensor, torch.Tensor | None], MatVec],
    inputs: torch.Tensor,
    labels: torch.Tensor | None,
    chunk_size: int | None,
) -> MatVec:
    """The mean over an evaluation set of per-sample operators of ``model``, chunk by chunk, in eval mode.

    ``prepare(x_c, y_c)`` returns the operator averaged over chunk c; the result is
    A = sum_c (n_c / N) A_c. Preparation and every product run under :func:`evaluation_mode`, so the
    operator is that of the eval-mode model whatever mode the caller leaves it in.

    With a single chunk (``chunk_size`` None or >= N) the prepared operator is built once and reused by
    every product (its autograd graph stays in memory: about one training step at batch size N). With
    several chunks each product prepares each chunk again, so peak memory is that of one chunk, at the
    price of one more forward and backward pass per chunk and product.
    """
    n = inputs.shape[0]
    size = n if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    if size >= n:
        with evaluation_mode(model):
            single = prepare(inputs, labels)

        def cached(v: torch.Tensor) -> torch.Tensor:
            with evaluation_mode(model):
                return single(v)

        return cached
    input_chunks = inputs.split(size)
    label_chunks = labels.split(size) if labels is not None else (None,) * len(input_chunks)

    def chunked(v: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(v)
        with evaluation_mode(model):
            for x_c, y_c in zip(input_chunks, label_chunks):
                total.add_(prepare(x_c, y_c)(v), alpha=x_c.shape[0] / n)
        return total

    return chunked
