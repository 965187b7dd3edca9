"""``CalibratedModel``: a trained PyTorch classifier and a caltrain calibrator as one ``nn.Module``.

``CalibratedModel(model, "ts").fit(val_loader)`` runs ``model`` over the loader (eval mode, no grad, batches
moved to the model's device), fits the calibrator on the collected logits and labels, and then

- ``forward(x)`` returns **calibrated logits** for a logit-map calibrator (``ts``, ``vector``, ``matrix``,
  ``dirichlet``, ``ats``, ``platt``, ``beta``, ...: ``calibrator.transform(model(x))``), and
  **log-probabilities** ``log(predict_proba)`` for the others (``histogram``, ``isotonic``, ``ets``; a zero
  probability gives ``-inf``). Either way ``softmax(forward(x)) == predict_proba(x)``, so the wrapper drops into
  code that applies a softmax or a cross-entropy to a model's output. The output has the model's dtype and
  device; its columns follow the calibrator's ``abstention`` convention (``"renormalized"``: K columns, the
  abstention logit dropped; ``"with_unknown"``: K+1).
- ``predict_proba(x)``: the calibrated probabilities (float64, on the model's device).

The loader yields ``(x, y)`` or ``(x, y, ...)`` (extra items, e.g. indices, are ignored). The calibrator's fitted
state is part of ``state_dict()`` (an ``_extra_state`` entry of plain values and tensors, so
``torch.load(path, weights_only=True)`` reads it); ``calibrator.save("cal.json")`` writes it on its own.

In spirit TorchUncertainty's ``TemperatureScaler(model).fit(loader)``, for every caltrain calibrator.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> torch.manual_seed(0) is not None
    True
    >>> net = torch.nn.Linear(4, 3)
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,)))
    >>> cm = CalibratedModel(net, "ts").fit(DataLoader(data, batch_size=16))
    >>> with torch.no_grad():
    ...     cm(torch.randn(2, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

import torch
from torch import nn

from caltrain.posthoc.base import Calibrator, NotFittedError
from caltrain.utils.modules import eval_mode

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

__all__ = ["CalibratedModel"]


class CalibratedModel(nn.Module):
    """``model`` followed by a post-hoc calibrator, as an ``nn.Module`` (module docstring).

    Args:
        model: a classifier returning logits ``[N, C]`` (``[N]`` or ``[N, 1]`` for a binary calibrator on a
            single positive-class logit).
        calibrator: a registered name (``caltrain.posthoc.names()``) or a :class:`Calibrator` (used as given:
            ``fit`` fits it in place; an already fitted one makes ``fit`` unnecessary).
        **options: the calibrator's options when ``calibrator`` is a name (e.g. ``abstention="renormalized"``).

    Attributes:
        model: the wrapped model (its parameters appear in ``state_dict`` under ``model.``).
        calibrator: the calibrator.
    """

    def __init__(self, model: nn.Module, calibrator: str | Calibrator = "ts", **options: Any) -> None:
        super().__init__()
        if isinstance(calibrator, str):
            from caltrain.posthoc.registry import create

            calibrator = create(calibrator, **options)
        elif not isinstance(calibrator, Calibrator):
            raise TypeError(f"calibrator: expected a caltrain calibrator or a registered name, got {calibrator!r}")
        elif options:
            raise TypeError("options are for a calibrator given by name; set them on the calibrator instead")
        self.model = model
        self.calibrator = calibrator

    # ------------------------------------------------------------------------------------------------- fitting
    @torch.no_grad()
    def collect(self, loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's logits ``[N, C]`` (float32 or the model's dtype, on the model's device) and labels ``[N]``
        over ``loader`` (eval mode, no grad; each submodule's ``training`` flag is restored afterwards)."""
        device = self._device()
        logits, labels = [], []
        with eval_mode(self.model):
            for i, batch in enumerate(loader):
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    length = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
                    raise ValueError(
                        f"loader: batch {i}: expected (x, y) or (x, y, ...), got {type(batch).__name__}{length}"
                    )
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True) if torch.is_tensor(x) else x
                logits.append(self._model_logits(x))
                labels.append(torch.as_tensor(y).to(device).reshape(-1))
        if not logits:
            raise ValueError("loader: yielded no batch; pass the validation loader")
        return torch.cat(logits), torch.cat(labels)

    def fit(self, loader: Iterable[Any]) -> Self:
        """Fit the calibrator on the model's logits over ``loader`` (a validation split) and return ``self``."""
        z, y = self.collect(loader)
        self.calibrator.fit(z, y)
        return self

    # ----------------------------------------------------------------------------------------------- inference
    def forward(self, x: Any) -> torch.Tensor:
        """Calibrated logits (logit maps) or log-probabilities (others), in the model's dtype (module docstring)."""
        raw = self.model(x)
        z = self._squeezed(raw)
        if self.calibrator.is_logit_map:
            out = self.calibrator.transform(z)
            if out.ndim == 1 and raw.ndim == 2:  # a binary [N, 1] model output keeps its shape
                out = out[:, None]
        else:
            out = torch.log(self.calibrator.predict_proba(z))
        return out.to(raw.dtype)

    def predict_proba(self, x: Any) -> torch.Tensor:
        """Calibrated probabilities ``[N, C']`` (float64, on the model's device) of ``model(x)``."""
        return self.calibrator.predict_proba(self._model_logits(x))

    # ---------------------------------------------------------------------------------------------------- state
    def get_extra_state(self) -> dict[str, Any]:
        """The calibrator's :meth:`~Calibrator.state_dict` (``{"calibrator": None}`` while unfitted)."""
        try:
            return {"calibrator": self.calibrator.state_dict()}
        except NotFittedError:
            return {"calibrator": None}

    def set_extra_state(self, state: Any) -> None:
        """Restore the calibrator saved by :meth:`get_extra_state` (checked like a calibrator file)."""
        if not isinstance(state, dict) or "calibrator" not in state:
            raise ValueError(f"_extra_state: expected {{'calibrator': ...}} saved by CalibratedModel, got {state!r}")
        saved = state["calibrator"]
        if saved is None:
            self.calibrator = type(self.calibrator)(**self.calibrator.get_params())
            return
        from caltrain.posthoc.registry import CALIBRATORS

        name = saved.get("name") if isinstance(saved, dict) else None
        if not isinstance(name, str) or name not in CALIBRATORS.names():
            raise ValueError(f"_extra_state: not a saved caltrain calibrator (name {name!r})")
        self.calibrator = CALIBRATORS.get(name).from_state_dict(saved, source="_extra_state")

    def extra_repr(self) -> str:
        return f"calibrator={self.calibrator!r}"

    # ------------------------------------------------------------------------------------------------ internals
    def _device(self) -> torch.device:
        for tensor in (*self.model.parameters(), *self.model.buffers()):
            return tensor.device
        return torch.device("cpu")

    def _model_logits(self, x: Any) -> torch.Tensor:
        return self._squeezed(self.model(x))

    def _squeezed(self, z: torch.Tensor) -> torch.Tensor:
        if self.calibrator.binary_only and z.ndim == 2 and z.shape[1] == 1:
            z = z[:, 0]
        return z
