"""The training configuration: typed, validated, frozen; built from YAML plus ``key=value`` overrides.

A run is fully described by one :class:`TrainConfig`. It is built from defaults, then an optional YAML file,
then overrides such as ``optim.lr=0.05`` or ``loss.options.gamma=3`` (dotted paths, values parsed as YAML
scalars), and validated by pydantic: a mistyped key fails with the list of valid keys, a bad value with the
field and the expectation. The resolved configuration is saved as ``config.yaml`` in the run directory.

Every name is checked when the configuration is built, before any data is loaded: the objective
(``loss.name``), dataset (``data.name``), model (``model.name``, or ``auto``) and calibrators
(``eval.posthoc``) against their registries, ``eval.abstention`` against :mod:`caltrain.abstention`, the
optimiser and schedule against their fixed lists; ``loss.options``, ``model.options`` and ``data.options``
against the factory's keyword parameters. A misspelt name fails with the closest valid one
(``eval.posthoc: expected one of 'ats', ..., got 'tss'; did you mean 'ts', 'ats'?``). Whether a real
dataset's files are present is a separate check, :func:`check_data` (the files may live on another machine
than the one that builds the configuration).

Example:
    >>> cfg = build_config(overrides=["data.name=digits", "optim.lr=0.05", "epochs=3"])
    >>> cfg.optim.lr, cfg.epochs
    (0.05, 3)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

# MAX_BINS bounds eval.n_bins: the metrics' own cap, owned by utils.checks (check_n_bins says why); re-exported.
from caltrain.utils.checks import MAX_BINS, check_n_bins

__all__ = [
    "ConfigError",
    "CurvatureConfig",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "MixupConfig",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "MAX_BINS",
    "build_config",
    "check_data",
    "check_device",
    "config_to_dict",
    "load_yaml",
    "parse_override",
]



class ConfigError(ValueError):
    """An invalid configuration (unknown key, bad value); the message names the key and the expectation."""


def _check_name(value: str, key: str, names: Sequence[str]) -> str:
    """``value`` if it is one of ``names``, else a ``ValueError`` naming ``key`` and the closest name."""
    from caltrain.utils.checks import check_choice

    return check_choice(value, key, names)


def _check_options(
    key: str, registry: Any, name: str, options: dict[str, Any], *, passed: dict[str, str], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Raise ``ValueError`` unless every key of ``options`` is a keyword parameter of ``registry``'s ``name``.

    Args:
        key: the configuration key, e.g. ``"loss.options"``, named in the message.
        passed: parameters the trainer passes itself -> where to set them instead (they may not be options).
        extra: further keywords accepted besides the factory's (those of the ``create`` wrapper).
    """
    from caltrain.utils.checks import did_you_mean

    for k in options:
        if k in passed:
            raise ValueError(f"{key}.{k}: set by caltrain, not an option of {registry.kind} {name!r}; {passed[k]}")
    rest = {k: v for k, v in options.items() if k not in extra}
    try:
        registry.check_kwargs(name, rest, reserved=tuple(passed))
    except TypeError as err:
        valid = [k for k in (*registry.parameters(name), *extra) if k not in passed]
        hints = "".join(did_you_mean(k, valid) for k in sorted(rest) if k not in valid)
        shared = [k for k in extra if k not in registry.parameters(name)]
        also = f" (and {', '.join(shared)})" if shared else ""
        raise ValueError(f"{key}: {err}{also}{hints}") from None
    _check_option_types(key, registry.get(name), rest)
    return options


def _check_option_types(key: str, factory: Any, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming ``key.option`` when a value does not fit the factory's type annotation.

    Only a check (the values are passed on unchanged), in pydantic's lax mode (``"3"`` fits ``int``); parameters
    without an annotation, or with one pydantic cannot check (a class, a callable), are left to the factory.
    Without it ``model.options.hidden=0`` failed deep inside the model with ``'int' object is not iterable``.
    """
    import inspect

    from pydantic import TypeAdapter

    try:
        params = inspect.signature(factory, eval_str=True).parameters
    except Exception:  # annotations that cannot be resolved here: leave the check to the factory
        return
    for option, value in options.items():
        param = params.get(option)
        if param is None or param.annotation is inspect.Parameter.empty:
            continue
        try:
            adapter = TypeAdapter(param.annotation)
        except Exception:  # not a type pydantic can check
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]
            raise ValueError(f"{key}.{option}: {first['msg']} (got {value!r})") from None


def _own_keywords(create: Any, passed: dict[str, str]) -> list[str]:
    """The keyword-only parameters a registry's ``create`` takes itself (e.g. ``seed``), less those in ``passed``."""
    import inspect

    return [p.name for p in inspect.signature(create).parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in passed]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RegisteredSection(_Section):
    """A section that names a registry entry (``name``) and passes ``options`` to its factory.

    Both are checked when the configuration is built: the name against the registry of ``caltrain.<_package>``
    (with the closest names), the option keys against the factory's signature (:meth:`_known_options`).
    """

    _package: ClassVar[str]
    _key: ClassVar[str]

    @field_validator("name", check_fields=False)
    @classmethod
    def _registered_name(cls, v: str) -> str:
        import importlib

        return _check_name(v, f"{cls._key}.name", importlib.import_module(f"caltrain.{cls._package}").names())

    @field_validator("options", check_fields=False)
    @classmethod
    def _registered_options(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return v if "name" not in info.data else cls._known_options(info.data["name"], v)  # else: the name failed

    @classmethod
    def _known_options(cls, name: str, options: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class DataConfig(_RegisteredSection):
    """Dataset and batching."""

    name: str = "synthetic"
    #: Directory holding real datasets (CIFAR, SVHN, ...); unused by the embedded sets.
    root: str | None = None
    #: Dataset options passed to ``caltrain.data.create`` (e.g. ``n_train``, ``noise``).
    options: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    #: False, True (the dataset's standard augmentation), or names of batch ops ("crop,flip,cutout").
    augment: Union[bool, str] = False

    _package, _key = "data", "data"

    @classmethod
    def _known_options(cls, name: str, options: dict[str, Any]) -> dict[str, Any]:
        from caltrain import data

        passed = {"root": "set data.root instead"}
        return _check_options("data.options", data.DATASETS, name, options, passed=passed,
                              extra=_own_keywords(data.create, passed))


#: What ``model.name=auto`` becomes, by the dataset's ``kind``: an MLP for feature vectors, a CNN for images.
AUTO_MODELS = {"features": "mlp", "images": "cnn", "dense_binary": "unet"}
_AUTO_MODELS = tuple(AUTO_MODELS.values())


def resolve_model_name(name: str, data_kind: str, task: str = "classification") -> str:
    """``name``, or for ``"auto"`` the model :data:`AUTO_MODELS` picks for a dataset of kind ``data_kind`` and
    task ``task`` (a dense binary task gets ``unet``)."""
    if name != "auto":
        return name
    if task == "dense_binary":
        return AUTO_MODELS["dense_binary"]
    return AUTO_MODELS["features"] if data_kind == "features" else AUTO_MODELS["images"]


class ModelConfig(_RegisteredSection):
    """Model by registry name; ``auto`` picks ``mlp`` for feature data and ``cnn`` for images."""

    name: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    _package, _key = "models", "model"

    @field_validator("name")
    @classmethod
    def _registered_name(cls, v: str) -> str:
        from caltrain import models

        return v if v == "auto" else _check_name(v, "model.name", ["auto", *models.names()])

    @classmethod
    def _known_options(cls, name: str, v: dict[str, Any]) -> dict[str, Any]:
        from caltrain import models

        passed = {k: "the trainer sets it from the dataset and the objective"
                  for k in ("num_classes", "in_channels", "input_shape")}
        extra = _own_keywords(models.create, passed)
        if name != "auto":
            return _check_options("model.options", models.MODELS, name, v, passed=passed, extra=extra)
        # auto is mlp for feature data and cnn for images: the options must fit one of them
        errors = []
        for candidate in _AUTO_MODELS:
            try:
                return _check_options("model.options", models.MODELS, candidate, v, passed=passed, extra=extra)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(f"{'; '.join(errors)} (model.name=auto is one of {', '.join(_AUTO_MODELS)})")


class LossConfig(_RegisteredSection):
    """Objective by registry name with its hyperparameters (``caltrain losses`` lists them)."""

    name: str = "ce"
    options: dict[str, Any] = Field(default_factory=dict)

    _package, _key = "losses", "loss"

    @classmethod
    def _known_options(cls, name: str, options: dict[str, Any]) -> dict[str, Any]:
        from caltrain.losses import LOSSES

        passed = {"num_classes": "the trainer sets it from the dataset",
                  "num_samples": "the trainer sets it from the training split"}
        return _check_options("loss.options", LOSSES, name, options, passed=passed)


class OptimConfig(_Section):
    """Optimiser. ``sam`` wraps ``sam_base`` (sgd or adamw) with Sharpness-Aware Minimisation."""

    name: Literal["sgd", "adamw", "muon", "sam"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    #: Muon: momentum of the Muon update, and learning rate of the AdamW that updates biases, norms and the head.
    muon_momentum: float = Field(0.95, ge=0, lt=1)
    muon_adamw_lr: float = Field(1e-3, gt=0)
    sam_rho: float = Field(0.05, gt=0)
    sam_base: Literal["sgd", "adamw"] = "sgd"
    #: Clip the global gradient norm to this value (None: no clipping).
    grad_clip: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "OptimConfig":
        if self.nesterov and self.momentum == 0 and self.name in ("sgd", "sam"):
            raise ValueError("optim.nesterov=true needs optim.momentum > 0")
        return self


class ScheduleConfig(_Section):
    """Learning-rate schedule, evaluated per step as a function of the (fractional) epoch.

    - ``constant``; ``multistep``: multiply by ``gamma`` at each epoch in ``milestones``;
    - ``step``: multiply by ``gamma`` every ``step_size`` epochs ("halve every 25 epochs": step_size 25, gamma 0.5);
    - ``cosine``: cosine decay from lr to ``min_lr_factor * lr`` over the run.
    ``warmup_epochs`` of linear warm-up from 0 precede any of them.
    """

    name: Literal["constant", "multistep", "step", "cosine"] = "constant"
    milestones: tuple[float, ...] = ()
    gamma: float = Field(0.1, gt=0)
    step_size: float = Field(25, gt=0)
    warmup_epochs: float = Field(0, ge=0)
    min_lr_factor: float = Field(0.0, ge=0, le=1)


class EvalConfig(_Section):
    """What is measured, how often, and which checkpoint is kept."""

    #: Bins of the binned metrics (ECE, MCE, adaptive ECE, ...): 1 to :data:`MAX_BINS`.
    n_bins: int = Field(15, ge=1)
    #: Also evaluate every k optimiser steps (0: only at the end of each epoch).
    every_steps: int = Field(0, ge=0)
    #: Splits evaluated each epoch ("train" is the running estimate over the epoch's batches).
    splits: tuple[Literal["train", "val", "test"], ...] = ("train", "val", "test")
    #: Model selection: the last epoch, or the epoch with the best validation loss (NLL) or accuracy.
    select: Literal["last", "best_val_loss", "best_val_accuracy"] = "last"
    #: How K+1 (abstention) outputs become K-class probabilities for the metrics; None: the objective's own.
    abstention: str | None = None
    #: Post-hoc calibrators fitted on validation logits at the end (``caltrain.posthoc`` names).
    posthoc: tuple[str, ...] = ("ts", "ats")
    #: Dense binary tasks: the calibrators are fitted on a seeded subsample of about this many validation pixels
    #: (each pixel kept with probability min(1, posthoc_pixels / pixels); 0: every pixel). Classification ignores it.
    posthoc_pixels: int = Field(1_000_000, ge=0)
    #: At the end, score the dataset's paired OOD sets (``caltrain data`` lists them) against the test split with the
    #: maximum softmax probability: ``summary["ood"][name]`` = AUROC, AUPR, FPR at 95% TPR; the first set's logits
    #: are saved as ``logits_ood.npz`` for the report's histograms.
    ood: bool = True

    @field_validator("n_bins")
    @classmethod
    def _bounded_bins(cls, v: int) -> int:
        return check_n_bins(v, "eval.n_bins")

    @field_validator("abstention")
    @classmethod
    def _known_convention(cls, v: str | None) -> str | None:
        from caltrain.abstention import check_convention

        return check_convention(v, "eval.abstention")

    @field_validator("posthoc")
    @classmethod
    def _known_calibrators(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from caltrain import posthoc

        for name in v:
            _check_name(name, "eval.posthoc", posthoc.names())
        return v


class MixupConfig(_Section):
    """Mixup as a training setting.

    - ``none``;
    - ``mixup`` (Zhang et al. 2018, arXiv 1710.09412): train on x~ = l x_i + (1-l) x_j with loss
      l L(z~, y_i) + (1-l) L(z~, y_j), l ~ Beta(alpha, alpha); Thulasidasan et al. 2019 (arXiv 1905.11001) found
      it improves calibration;
    - ``regmixup`` (Pinto et al. 2022, arXiv 2206.14502): the clean loss plus ``weight`` times the mixup loss,
      calibration-aware by keeping the clean targets (alpha 10 in the paper).
    """

    mode: Literal["none", "mixup", "regmixup"] = "none"
    alpha: float = Field(1.0, gt=0)
    weight: float = Field(1.0, ge=0)


class CurvatureConfig(_Section):
    """Track Gauss-Newton sharpness and the margin tail every ``every_steps`` steps (0: off)."""

    every_steps: int = Field(0, ge=0)
    subset: int = Field(256, ge=1)
    iters: int = Field(20, ge=1)


class TrainConfig(_Section):
    """One training run."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    mixup: MixupConfig = Field(default_factory=MixupConfig)
    curvature: CurvatureConfig = Field(default_factory=CurvatureConfig)
    epochs: int = Field(10, ge=1)
    #: At most 2**31 - 1: every generator caltrain seeds takes it (NumPy's are 32-bit), with room for the
    #: per-process offsets of distributed runs.
    seed: int = Field(0, ge=0, le=2**31 - 1)
    #: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    #: Autocast precision on GPU; on CPU only fp32 is accepted.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    #: channels-last memory format for image models; "auto": on for image inputs (faster convolutions on CPU,
    #: see bench/train.py in BENCHMARKS.md), off for feature data.
    channels_last: Union[bool, Literal["auto"]] = "auto"
    #: CPU intra-op threads for the run (``torch.set_num_threads``): "auto" (default) chooses from the model's
    #: size and the cores this process may use (small models: one thread; :mod:`caltrain.utils.threads`, the
    #: choice and its reason are in ``meta.json``); 0 keeps torch's default (one per core); N sets N. On a
    #: machine shared with other busy processes, torch's default made small models 30-45x slower
    #: (BENCHMARKS.md, "threads"). Does not change a run's results' fingerprint.
    threads: Union[Literal["auto"], int] = "auto"
    #: Save a checkpoint every this many epochs (and always at the end).
    checkpoint_every: int = Field(1, ge=1)
    quiet: bool = False

    @field_validator("threads", mode="before")
    @classmethod
    def _threads_value(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            return v
        raise ValueError(f"threads: expected 'auto', 0 (torch's default) or a number of threads >= 1, got {v!r}")

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, v: str) -> str:
        if v not in ("auto", "cpu", "mps") and not re.fullmatch(r"cuda(:\d+)?", v):
            raise ValueError(f"expected 'auto', 'cpu', 'mps' or 'cuda[:N]', got {v!r}")
        return v


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], value)``; the value is parsed as a YAML scalar/list."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=0.05")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: cannot parse value {raw!r}: {err}") from None
    return key.split("."), value


def apply_overrides(tree: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of the nested dict ``tree`` with every ``key=value`` override applied."""
    tree = copy.deepcopy(tree)
    for text in overrides:
        path, value = parse_override(text)
        node = tree
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return tree


def _format_validation_error(err: ValidationError) -> str:
    from caltrain.utils.checks import did_you_mean

    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not isinstance(p, int))
        if e["type"] == "extra_forbidden":
            section = _section_for(e["loc"][:-1])
            valid = ", ".join(section.model_fields) if section else ""
            hint = did_you_mean(e["loc"][-1], valid.split(", "))
            lines.append(f"{loc}: unknown key (valid keys here: {valid}){hint}")
        elif e["type"] == "value_error":  # our validators' messages name the key and what was given
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            lines.append(msg if msg.startswith(f"{loc}") else f"{loc}: {msg}")
        elif e["type"] == "literal_error":
            choices = re.findall(r"'([^']*)'", str(e.get("ctx", {}).get("expected", "")))
            lines.append(f"{loc}: {e['msg']} (got {e.get('input')!r}){did_you_mean(e.get('input'), choices)}")
        else:
            lines.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def _section_for(loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] = TrainConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def build_config(
    yaml_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults <- ``base`` dict <- YAML file <- overrides, validated into a :class:`TrainConfig`.

    Raises:
        ConfigError: an unknown key (listing the valid ones), an invalid value, a YAML file that is not valid
            YAML or not a mapping (see :func:`load_yaml`), or the ``config.yaml`` of a :func:`caltrain.fit` run
            (``source: python``: its model and data live in Python, not in a registry).
        FileNotFoundError: ``yaml_file`` does not exist.
    """

    tree: dict[str, Any] = copy.deepcopy(base) if base else {}
    if yaml_file is not None:
        tree = _deep_merge(tree, load_yaml(yaml_file))
        if tree.get("source") == "python":  # written by caltrain.fit: a user's model and data, not registry names
            model = (tree.get("model") or {}).get("name", "a custom model")
            raise ConfigError(
                f"{yaml_file}: this run was trained from Python with caltrain.fit ({model}, data passed in Python); "
                "the command line cannot rebuild a Python model or dataset. Resume it from Python: "
                "caltrain.fit(model, train, ..., out=RUN_DIR, resume=True) with the same model, data and settings"
            )
    tree = apply_overrides(tree, overrides)
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping held by the YAML file ``path`` (``{}`` for an empty file), read with ``yaml.safe_load``.

    Every failure names the file: ``FILE: not valid YAML (line L, column C): ...`` with the position of the
    problem (1-based), ``FILE: expected a mapping at the top level, got list``, not UTF-8 text, a directory.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: any other of the failures above.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{path}: expected a YAML file, got a directory")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a YAML file (not UTF-8 text: byte {err.start} cannot be decoded)") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: {_yaml_problem(err)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        raise ConfigError(f"{path}: expected a mapping (key: value lines) at the top level, got {kind}")
    return loaded


def _yaml_problem(err: Exception) -> str:
    """``not valid YAML (line L, column C): what`` from a PyYAML error (1-based position when PyYAML gives one)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    what = ": ".join(p for p in parts if p) or str(err).splitlines()[0]
    return f"not valid YAML{where}: {what}"


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_data(configs: Iterable[TrainConfig]) -> None:
    """Check that the real datasets' files of ``configs`` are present, once per distinct dataset, loading nothing.

    ``caltrain train`` and :func:`caltrain.train.suite.run_suite` call it before any run starts, so missing files
    give one message instead of one failure per run.

    Raises:
        FileNotFoundError: from :func:`caltrain.data.check_available`: the dataset, the missing files under the
            folder searched, how to get them, and how to point caltrain at them (``--set data.root=DIR``).
    """
    import json

    from caltrain import data

    seen: set[str] = set()
    for cfg in configs:
        key = json.dumps([cfg.data.name, cfg.data.root, cfg.data.options], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            data.check_available(cfg.data.name, cfg.data.root, **cfg.data.options)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The configuration as plain JSON/YAML types (tuples as lists)."""
    return cfg.model_dump(mode="json")


def check_device(config: TrainConfig) -> None:
    """Check that ``config.device`` exists on this machine (and that its precision fits it), building nothing.

    ``caltrain train`` and ``caltrain bench`` call it when they start, before any data or model work, so
    ``device=cuda`` on a machine without a GPU fails with one message instead of a traceback from deep inside
    torch. ``auto`` always passes (it falls back to the CPU). Like :func:`check_data` it is separate from the
    configuration's validation: a configuration may be built on a machine other than the one that runs it.

    Raises:
        ConfigError: naming ``device`` (or ``precision``) and the devices available here.
    """
    import torch

    device = config.device
    cuda = torch.cuda.is_available()
    n_gpu = torch.cuda.device_count() if cuda else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    available = ["cpu", *(f"cuda:{i}" for i in range(n_gpu)), *(["mps"] if mps else [])]
    listing = f"available here: auto, {', '.join(available)}"
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        if device != "cuda" and not (device.startswith("cuda:") and index.isdigit()):
            raise ConfigError(f"device: expected 'cuda' or 'cuda:N' with N a GPU index, got {device!r}; {listing}")
        if not cuda:
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device: {device!r} is not available ({why}); {listing}")
        if index and int(index) >= n_gpu:
            raise ConfigError(f"device: {device!r} is not available ({n_gpu} CUDA GPU(s) visible); {listing}")
    elif device == "mps" and not mps:
        raise ConfigError(f"device: 'mps' is not available (no Apple GPU backend here); {listing}")
    resolved = "cuda" if device == "auto" and cuda else device
    if config.precision != "fp32" and not resolved.startswith("cuda"):
        raise ConfigError(f"precision: {config.precision!r} needs a CUDA device, and device={device!r} runs on "
                          f"{'the CPU' if resolved in ('auto', 'cpu') else resolved}; use precision=fp32")
