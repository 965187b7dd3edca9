"""Per-task report sections: what the report shows for a dataset, chosen by what its runs contain (the task).

The lead of a report (verdicts, results table, accuracy-vs-calibration trade-off) is the same for every task;
what follows it for each dataset comes from the :class:`TaskSections` registered for the runs' task:

- ``classification`` (:mod:`caltrain.report.tasks.classification`): learning curves on validation as small
  multiples, reliability diagrams before and after each calibrator for the objectives the reader picks,
  per-class ECE, OOD histograms, ECE and sharpness against steps.
- ``dense_binary`` (:mod:`caltrain.report.tasks.dense_binary`): learning curves, pooled pixel reliability diagrams
  before and after each calibrator, example maps (image, ground truth, posterior, probability, confidence),
  ASLP's α histogram and α against epochs, confidence and ECE on the empty-mask OOD set.

Adding a task is one file in this folder (every module here is imported when the registry is first asked):

.. code-block:: python

    from caltrain.report.tasks import Block, MetricInfo, Section, TaskSections, register_task

    @register_task("dense_binary")
    class DenseSections(TaskSections):
        primary_metrics = ("accuracy", "ece", "oe", "ue", "nll", "brier", "mae", "max_f", "s_measure", "max_e")
        reference_candidates = ("bce",)
        metric_info = {"alpha": MetricInfo("α", 1, 3, None, "ASLP's smoothing strength")}

        @classmethod
        def matches(cls, run):               # runs that do not say summary["task"]
            return "s_measure" in run.summary.get("test", {})

        def sections(self, ctx):             # ctx: DatasetContext (runs, objectives, colours, verdict, ...)
            return [Section("Dense reliability", [Block(slug=..., title=..., caption=..., body=svg_text)])]

A run's task is ``summary["task"]`` (or ``config["task"]``) when it names one, else the first registered
task whose :meth:`TaskSections.matches` accepts the run, else ``classification``.

Example:
    >>> sections = task_sections("classification")
    >>> sections.name, sections.primary_metrics[:2], sections.reference_candidates
    ('classification', ('accuracy', 'ece'), ('ce',))
    >>> task_sections("not_registered").name  # the lead only
    'generic'
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from caltrain.utils.registry import Registry

if TYPE_CHECKING:
    from caltrain.report.loading import RunRecord
    from caltrain.report.verdict import Verdict

__all__ = ["Block", "DatasetContext", "MetricInfo", "Section", "TASKS", "TaskSections", "register_task",
           "task_of", "task_sections"]

#: task name -> :class:`TaskSections` subclass.
TASKS: Registry = Registry("report task")
_LOADED = False


def register_task(name: str):
    """Class decorator: register a :class:`TaskSections` subclass for the task ``name`` (sets ``name``)."""
    def decorator(cls):
        cls.name = name
        return TASKS.register(name)(cls)

    return decorator


@dataclass(frozen=True)
class MetricInfo:
    """How the results table shows a metric: header, scale (100 for %), digits, which mean is best ("low",
    "high", None: not ranked) and a one-line description (the header's tooltip)."""

    header: str
    scale: float = 1.0
    digits: int = 3
    better: str | None = "low"
    description: str = ""


@dataclass
class Block:
    """One figure or table of a report.

    Attributes:
        slug: a file-name-safe id, unique within the report.
        title: what it shows (also the figure's own title).
        caption: how to read it (conventions, which runs).
        body: an ``<svg class="plot">`` element (``kind="svg"``) or an HTML fragment (``kind="html"``).
        objective: when set, the block belongs to that objective and is shown only while the reader picks it
            (the section's picker).
    """

    slug: str
    title: str
    caption: str
    body: str
    kind: str = "svg"
    objective: str | None = None


@dataclass
class Section:
    """A titled part of a dataset's folded section. ``picker``: the objectives the reader can pick for the
    blocks that belong to one objective, and ``picked``: those shown at first."""

    title: str
    blocks: list[Block]
    intro: str = ""
    picker: list[str] = field(default_factory=list)
    picked: list[str] = field(default_factory=list)


@dataclass
class DatasetContext:
    """What a :class:`TaskSections` gets for one dataset.

    Attributes:
        dataset: the dataset label; task: its task name; slug: an id prefix unique within the report.
        runs: every complete run of the dataset (all seeds), sorted by objective and seed.
        objectives: the group labels (objective, plus ``/variant``), in order; by_objective: label -> runs.
        firsts: label -> the run of its lowest seed (figures that show one run per objective).
        reference: the baseline objective; colours, markers: label -> colour / marker, the same in every figure.
        calibrators: the post-hoc calibrators every run of the dataset has results for.
        verdict: the dataset's verdict, or None.
        max_classes: how many classes per-class figures show.
        skipped: append ``"what: why"`` for every figure left out because its inputs are missing.
    """

    dataset: str
    task: str
    slug: str
    runs: list["RunRecord"]
    objectives: list[str]
    by_objective: dict[str, list["RunRecord"]]
    firsts: dict[str, "RunRecord"]
    reference: str
    colours: dict[str, str]
    markers: dict[str, str]
    calibrators: list[str]
    verdict: "Verdict | None" = None
    max_classes: int = 10
    skipped: list[str] = field(default_factory=list)


class TaskSections:
    """The report of one task: table defaults, the verdict and the sections after the lead (subclass this).

    Attributes:
        name: the task name (set by :func:`register_task`).
        primary_metrics: summary keys shown as table columns by default, in order, when the runs have them
            (every other key is a column the reader can switch on).
        reference_candidates: baseline objectives, in order of preference, for the verdict and the grey
            reference in small multiples.
        calibration_metric: the summary key on the trade-off plot's y axis.
        metric_info: extra :class:`MetricInfo` entries for the task's own metrics.
    """

    name = "generic"
    primary_metrics: tuple[str, ...] = ("accuracy", "ece", "nll", "brier")
    reference_candidates: tuple[str, ...] = ()
    calibration_metric = "ece"
    metric_info: dict[str, MetricInfo] = {}

    @classmethod
    def matches(cls, run: "RunRecord") -> bool:
        """True when a run that does not name its task is this task's (default: never)."""
        return False

    def verdict(self, ctx: DatasetContext) -> "Verdict | None":
        """The dataset's verdict (default: none)."""
        return None

    #: The methods that build the dataset's sections, in order (names of ``(ctx) -> Section | None`` methods).
    builders: tuple[str, ...] = ()
    #: The errors of a builder that leave its section out (listed under "Left out") instead of failing the report.
    skip_errors: tuple[type[Exception], ...] = (FileNotFoundError,)

    def sections(self, ctx: DatasetContext) -> list[Section]:
        """The dataset's sections after the lead: each of :attr:`builders` in turn; one that raises a
        :attr:`skip_errors` error is left out and named in ``ctx.skipped``."""
        out = []
        for name in self.builders:
            try:
                section = getattr(self, name)(ctx)
            except self.skip_errors as err:
                ctx.skipped.append(f"{ctx.dataset} / {name.strip('_')}: {err}")
                continue
            if section is not None:
                out.append(section)
        return out

    def caveats(self, ctx: DatasetContext) -> list[str]:
        """The conventions behind the task's numbers and figures, for the caveats (repeated ones are shown once)."""
        return []


def _load() -> None:
    """Import every module of this package once (each registers its task)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def task_of(run: "RunRecord") -> str:
    """The task of a run: ``summary["task"]`` / ``config["task"]``, else the first task whose ``matches``
    accepts it, else ``"classification"``."""
    _load()
    named = run.summary.get("task") or run.config.get("task")
    if named:
        return str(named)
    for name in TASKS.names():
        if name != "classification" and TASKS.get(name).matches(run):
            return name
    return "classification"


def task_sections(task: str) -> TaskSections:
    """The :class:`TaskSections` of ``task``; a task nobody registered gets the generic one (lead only)."""
    _load()
    return TASKS.get(task)() if task in TASKS else TaskSections()


def first_seed_runs(runs: Sequence["RunRecord"], label: Any) -> dict[str, "RunRecord"]:
    """label(run) -> the run of that group with the lowest seed, in first-seen order."""
    out: dict[str, RunRecord] = {}
    for r in runs:
        key = label(r)
        if key not in out or r.seed < out[key].seed:
            out[key] = r
    return out
