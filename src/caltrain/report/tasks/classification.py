"""The classification task's report sections (the runs of ``caltrain train`` / ``bench`` on a classifier).

After the lead (verdict, table, trade-off), a dataset's folded section holds:

1. learning curves on the **validation** split as small multiples (one card per objective; accuracy, ECE and
   NLL; line = mean over seeds, band = min-max across seeds; the reference objective dashed grey in every
   card), with the **test** value of the selected model as a hollow diamond after the last epoch: test numbers
   are shown once, at the end, never per epoch (a reader must not select on them);
2. reliability diagrams of the test split before and after each saved calibrator (loaded from
   ``calibrators/<name>.json``, never refitted), one row per objective (its first seed), for the objectives
   the reader picks (at first: the reference and the verdict's best);
3. per-class ECE of each objective's first seed (the first ``max_classes`` classes);
4. OOD histograms of the maximum softmax probability, test split vs the named OOD set (``logits_ood.npz``
   holds the first OOD set of ``summary["ood"]``), with its AUROC;
5. ECE and Gauss-Newton sharpness against steps for runs that tracked curvature.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from caltrain.report.tasks import Block, DatasetContext, Section, TaskSections, register_task

__all__ = ["ClassificationSections"]


@register_task("classification")
class ClassificationSections(TaskSections):
    """Sections of a classification dataset (module docstring)."""

    primary_metrics = ("accuracy", "ece", "adaece", "classwise_ece", "nll", "brier", "aurc")
    reference_candidates = ("ce",)
    calibration_metric = "ece"

    @classmethod
    def matches(cls, run) -> bool:
        return True

    def verdict(self, ctx: DatasetContext):
        from caltrain.report.verdict import verdict

        if len(ctx.objectives) < 2:
            return None
        bins = {r.n_bins for r in ctx.runs}
        if len(bins) != 1:
            ctx.skipped.append(f"{ctx.dataset} / verdict: runs use different eval.n_bins ({sorted(bins)})")
            return None
        predictions: dict[str, dict[int, tuple[Any, Any]]] = {}
        try:
            for obj, runs in ctx.by_objective.items():
                for r in runs:
                    p, y = r.probs("test")
                    predictions.setdefault(obj, {})[r.seed] = (p, y)
            return verdict(ctx.dataset, predictions, n_bins=bins.pop(),
                           reference_candidates=(ctx.reference, *self.reference_candidates))
        except (FileNotFoundError, ValueError) as err:
            ctx.skipped.append(f"{ctx.dataset} / verdict: {err}")
            return None

    builders = ("_learning", "_reliability", "_classwise", "_ood", "_sharpness")
    skip_errors = (FileNotFoundError, ImportError)

    def caveats(self, ctx: DatasetContext) -> list[str]:
        n_bins = sorted({r.n_bins for r in ctx.runs})
        calibrators = list(dict.fromkeys(c for r in ctx.runs for c in (r.summary.get("posthoc") or {})))
        out = [f"ECE: {', '.join(map(str, n_bins))} equal-width bins (lo, hi] on the top-label confidence (confidence "
               "0 falls in the first bin), ECE = sum_b (n_b/N)|acc_b - conf_b| (Guo et al. 2017); AdaECE: the same "
               "with equal-mass bins (no sample dropped); classwise ECE (Kull et al. 2019): equal-width bins on every "
               "p_k, averaged over classes. All accumulated in float64 (caltrain.metrics)."]
        if calibrators:
            out.append(f"Post-hoc calibrators ({', '.join(calibrators)}) were fitted on the validation logits and "
                       "evaluated on the test logits; the reliability diagrams 'after' draw the calibrators each run "
                       "saved (calibrators/<name>.json), never refitted.")
        abst = sorted({str(r.abstention) for r in ctx.runs if r.abstention})
        if abst:
            out.append(f"Abstention runs (K+1 outputs): their metrics use the convention {', '.join(abst)} "
                       "(docs/methods.md#socrates-loss) and so do their plots and verdicts (with_unknown: K+1 "
                       "columns, predicting unknown counts as wrong; renormalized: p_k/(1 - p_idk)); without_unknown "
                       "rows do not sum to 1, so its plots use the renormalised rows. Post-hoc calibrators and OOD "
                       "scores see the K class logits.")
        return out

    # -- 1. learning curves -------------------------------------------------------------------------------------
    def _learning(self, ctx: DatasetContext) -> Section | None:
        return learning_section(ctx)

    # -- 2. reliability diagrams ----------------------------------------------------------------------------------
    def _reliability(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.charts import reliability_row
        from caltrain.report.reliability import ReliabilityDiagram

        blocks = []
        for obj in ctx.objectives:
            run = ctx.firsts[obj]
            if not run.has_logits("test"):
                ctx.skipped.append(f"{ctx.dataset} / reliability {run.name}: no logits_test.npz")
                continue
            views = [("uncalibrated", ReliabilityDiagram.from_run(run))]
            views += [(f"after {c}", ReliabilityDiagram.from_run(run, calibrator=c)) for c in ctx.calibrators
                      if c in run.saved_calibrators]
            missing = [c for c in ctx.calibrators if c not in run.saved_calibrators]
            if missing:
                ctx.skipped.append(f"{ctx.dataset} / reliability after {', '.join(missing)} for {run.name}: the run "
                                   "saved no calibrators/<name>.json (written before calibrators were saved)")
            title = f"{obj} (seed {run.seed}): reliability on the test split, before and after each calibrator"
            svg = reliability_row(views, title=title, objective=obj, colour=ctx.colours[obj],
                                  slug=f"{ctx.slug}-rel-{len(blocks)}")
            blocks.append(Block(slug=f"{ctx.slug}-reliability-{_safe(obj)}", title=title, objective=obj, body=svg,
                                caption=f"{run.name}: {run.n_bins} equal-width bins (lo, hi] of the top-label "
                                        "confidence; the calibrators are the ones the run saved (fitted on "
                                        "validation), applied to the test logits."))
        if not blocks:
            return None
        picked = [ctx.reference]
        if ctx.verdict is not None:
            picked += [ctx.verdict.best, ctx.verdict.lowest]
        picked = [o for o in dict.fromkeys(picked) if o in ctx.objectives]
        return Section("Reliability diagrams (test), before and after calibration", blocks,
                       intro="Pick the objectives to compare; each row is one objective's first seed.",
                       picker=list(ctx.objectives), picked=picked)

    # -- 3. per-class ECE -----------------------------------------------------------------------------------------
    def _classwise(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.classwise import ClasswiseReliability

        rows = {}
        for obj in ctx.objectives:
            run = ctx.firsts[obj]
            if run.has_logits("test"):
                rows[obj] = ClasswiseReliability.from_run(run)
        if not rows:
            return None
        names = next(iter(rows.values())).class_names[: ctx.max_classes]
        top = max(float(np.max(cw.class_ece[: len(names)])) for cw in rows.values()) or 1.0
        head = "".join(f"<th>{html.escape(str(n))}</th>" for n in names)
        body = []
        for obj, cw in rows.items():
            cells = []
            for k in range(len(names)):
                v = float(cw.class_ece[k]) if k < len(cw.class_ece) else float("nan")
                shade = 0.0 if not np.isfinite(v) else min(v / top, 1.0)
                cells.append(f'<td style="background: rgba(214, 39, 40, {0.08 + 0.6 * shade:.2f})" '
                             f'data-tip="{html.escape(obj)}, class {html.escape(str(names[k]))}: class ECE '
                             f'{100 * v:.2f}%">{100 * v:.1f}</td>')
            body.append(f'<tr data-objective="{html.escape(obj, quote=True)}"><th class="text">'
                        f"{html.escape(obj)}</th>{''.join(cells)}<td><b>{100 * cw.classwise_ece:.2f}</b></td></tr>")
        table = (f'<table class="heat"><thead><tr><th class="text">objective \\ class</th>{head}'
                 f"<th>cw-ECE %</th></tr></thead><tbody>{''.join(body)}</tbody></table>")
        title = f"{ctx.dataset}: per-class ECE (%) on the test split"
        more = " (first {} classes)".format(len(names)) if len(names) < len(rows[next(iter(rows))].class_names) else ""
        return Section("Per-class calibration", [Block(
            slug=f"{ctx.slug}-classwise", title=title, kind="html", body=table,
            caption=f"Class ECE sum_b (n_kb/N)|freq_kb - conf_kb| on equal-width bins of p_k, first seed of each "
                    f"objective{more}; darker = worse; the last column is their mean, the classwise ECE "
                    "(Kull et al. 2019).")])

    # -- 4. OOD -----------------------------------------------------------------------------------------------------
    def _ood(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.charts import ood_grid
        from caltrain.report.selective import OODHistogram

        panels, names = [], set()
        for obj in ctx.objectives:
            run = ctx.firsts[obj]
            if not run.has_logits("ood"):
                continue
            sets = run.summary.get("ood") or {}
            name = next(iter(sets), "OOD set")  # logits_ood.npz holds the first set of summary["ood"]
            names.add(name)
            auroc = (sets.get(name) or {}).get("auroc")
            sub = f"(AUROC {auroc:.3f})" if isinstance(auroc, (int, float)) else ""
            panels.append((obj, ctx.colours[obj], OODHistogram.from_run(run), sub))
        if not panels:
            return None
        out_name = ", ".join(sorted(names))
        title = f"{ctx.dataset}: max softmax probability, test split vs OOD set {out_name}"
        svg = ood_grid(panels, title=title, in_name=f"{ctx.dataset} test split", out_name=out_name,
                       score_label="max softmax probability", slug=f"{ctx.slug}-ood")
        return Section("Out-of-distribution detection", [Block(
            slug=f"{ctx.slug}-ood", title=title, body=svg,
            caption=f"Histograms (density) of the maximum softmax probability on the test split of {ctx.dataset} "
                    f"and on the OOD set {out_name} (first seed of each objective; an abstention run's score "
                    "uses its K class logits); AUROC of telling them apart by that score from summary.json.")])

    # -- 5. sharpness ---------------------------------------------------------------------------------------------
    def _sharpness(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.charts import Curve, CurveCard, card_grid
        from caltrain.report.sharpness import SharpnessTrajectory

        tracked = [r for r in ctx.runs if r.curvature]
        if not tracked:
            return None
        cards = []
        for r in tracked:
            t = SharpnessTrajectory.from_run(r)
            colour = ctx.colours.get(next((o for o, rs in ctx.by_objective.items() if r in rs), ""), "#333")
            card = CurveCard(r.name, colour, subtitle=f"Pearson r {t.pearson_r:.2f}")
            card.curves["ece"] = Curve(np.asarray(t.step, dtype=float), np.asarray(t.ece, dtype=float))
            card.curves["sharpness"] = Curve(np.asarray(t.step, dtype=float), np.asarray(t.sharpness, dtype=float))
            cards.append(card)
        title = f"{ctx.dataset}: ECE and Gauss-Newton sharpness against training steps (tracked subset)"
        svg = card_grid(cards, [("ece", "ECE %", 100), ("sharpness", "GN sharpness", 1)], title=title,
                        xlabel="step", legend=[("one run per panel", {"colour": "#444", "width": 1.7})], columns=4,
                        slug=f"{ctx.slug}-sharp")
        return Section("ECE and sharpness", [Block(
            slug=f"{ctx.slug}-sharpness", title=title, body=svg,
            caption="From the curvature records of metrics.jsonl (caltrain.analysis.CurvatureTracker); Pearson r "
                    "of ECE and sharpness in each panel's corner.")])


def learning_section(ctx: DatasetContext) -> Section | None:
    """Learning curves on validation as small multiples (one panel per objective, shared axes; the selected
    model's test value once, after the last epoch): the section both tasks show (their records share the keys)."""
    from caltrain.report.charts import Curve, CurveCard, card_grid
    from caltrain.report.learning_curves import LearningCurves

    metrics = ("accuracy", "ece", "nll")
    runs = [r for r in ctx.runs if r.epochs]
    if not runs:
        ctx.skipped.append(f"{ctx.dataset} / learning curves: no epoch records in metrics.jsonl")
        return None
    curves = LearningCurves.from_runs(runs, split="val", metrics=metrics)
    cards = {}
    for obj in curves.objectives:
        members = ctx.by_objective.get(obj, [])
        card = CurveCard(obj, ctx.colours.get(obj, "#333"),
                         subtitle=f"{len(curves.seeds[obj])} seed{'s' if len(curves.seeds[obj]) > 1 else ''}")
        for m in metrics:
            lo, hi = curves.band(obj, m)
            test = [r.summary.get("test", {}).get(m) for r in members]
            test = [float(v) for v in test if isinstance(v, (int, float))]
            end = float(np.mean(test)) if test else None
            selected = sorted({r.summary.get("selected_epoch") for r in members} - {None})
            scale = 1 if m == "nll" else 100
            tip = (f"{obj}: test {m} of the selected model (epoch {', '.join(map(str, selected)) or '?'}), "
                   f"mean over seeds: {scale * end:.3f}{'' if m == 'nll' else '%'}") if end is not None else None
            values = curves.mean(obj, m)
            cards[obj] = card
            card.curves[m] = None if np.all(np.isnan(values)) else Curve(
                curves.epochs[obj], values, lo if len(curves.seeds[obj]) > 1 else None,
                hi if len(curves.seeds[obj]) > 1 else None, end=end, end_tip=tip)
    ordered = [cards[o] for o in ctx.objectives if o in cards]
    reference = cards.get(ctx.reference)
    legend = [("mean over seeds (validation)", {"colour": "#444", "width": 1.7}),
              ("min–max over seeds", {"fill": "#444", "opacity": 0.2, "colour": "#aaa"}),
              *([(f"{ctx.reference} (reference, validation)", {"colour": "#9a9a9a", "dash": "4 2", "width": 1.2})]
                if len(ordered) > 1 else []),
              ("test, selected model (once, at the end)", {"colour": "#444", "marker": "D", "hollow": True,
                                                            "line": False})]
    svg = card_grid(ordered, [("accuracy", "val acc %", 100), ("ece", "val ECE %", 100), ("nll", "val NLL", 1)],
                    title=f"{ctx.dataset}: learning curves on the validation split, one panel per objective",
                    xlabel="epoch", reference=reference, legend=legend, slug=f"{ctx.slug}-lc")
    block = Block(slug=f"{ctx.slug}-learning-curves", title=f"{ctx.dataset}: learning curves (validation)",
                  caption="Validation accuracy, ECE and NLL against epochs, one panel per objective on shared "
                          "axes; line = mean over seeds, band = min-max across seeds, dashed grey = the "
                          f"reference objective ({ctx.reference}). The hollow diamond after the last epoch is "
                          "the test value of the selected model (eval.select), the only test number shown.",
                  body=svg)
    return Section("Learning curves (validation)", [block])


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
