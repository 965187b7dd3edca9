"""Small helpers on ``nn.Module`` shared by the trainer, the objectives and the analysis tools."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["eval_mode", "unwrap"]


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run the body with ``module`` in eval mode; restore each submodule's own ``training`` flag on exit.

    Restoring flags one by one (rather than calling ``module.train()``) keeps submodules that the user froze in
    eval mode (e.g. a frozen BatchNorm backbone) as they were. An objective's per-sample state does not advance
    in eval mode.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> net[1].eval()  # frozen by the user
        Dropout(p=0.5, inplace=False)
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training, net[1].training
        (True, False)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(module).__name__}")
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags:
            m.training = flag


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside ``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
