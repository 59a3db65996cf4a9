"""`xlray report SWEEP`: compare a sweep's trials from what MLflow holds, as tables and plots.

Reads the parent run's children (one per trial), then writes into ``output_dir/report`` (for an output in object
storage: made in its local scratch folder, then uploaded):
    trials.csv          one row per trial: model, languages, hyperparameters, status, final results
    zero_shot.parquet   long table: condition, language, metric, mean, std over seeds, and against each earlier
                        condition p_seeds_vs_<c> (Welch's t over seeds; p_seeds_vs_<c>_missing: why it is absent)
                        and p_vs_<c> (paired test over examples, for this set of seeds only)
    layers.parquet      long table of the per-layer curves (align.*, concepts.*): metric, layer, value
    summary.md          the zero-shot table for reading
    zero_shot.png       base vs adjusted vs continual per language (mean, std over seeds as error bars)
    layers.png          per-layer curves per model and language group
and logs them to the parent run (folder ``report``), so the MLflow UI shows them beside the trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from xlray.configs import load_config
from xlray.console import say
from xlray.errors import XlrayError
from xlray.outputs import atomic, read_json, upload
from xlray.plotting import pyplot
from xlray.result_names import (
    ALIGN,
    CONCEPTS,
    HP_PARAM,
    MEXA_POOLINGS,
    P_VALUE,
    P_VALUE_SEEDS,
    SENTENCE_ALIGNMENT,
    is_over_seeds,
    parse_zero_shot,
)
from xlray.storage import join, redact, scratch_dir, use_storage
from xlray.sweep.config import SweepConfig
from xlray.textio import is_uri

PER_LAYER = (f"{ALIGN}.", f"{CONCEPTS}.", f"{SENTENCE_ALIGNMENT}.")
# ... except the extraction's counts and MEXA pooled over layers, one value each
NOT_PER_LAYER = (f"{SENTENCE_ALIGNMENT}.extract.", *(f"{SENTENCE_ALIGNMENT}.mexa_{how}." for how in MEXA_POOLINGS))
HP = HP_PARAM
MISSING = "missing."  # the tag prefix of a metric that could not be computed (tracking.MlflowSink.log_missing)
COMPARED = ("base", "adjusted")  # the earlier conditions the tables have p-value columns for


def main(config_path: str | Path) -> int:
    """CLI entry: report on the sweep a config describes (it must have started: output_dir/sweep.json)."""
    cfg = load_config(config_path, SweepConfig)
    use_storage(cfg.storage)
    state_path = join(cfg.output_dir, "sweep.json")
    state = read_json(state_path)
    if state is None:
        raise XlrayError(
            f"{config_path}: no sweep has started in {redact(cfg.output_dir)} ({redact(state_path)} is missing)"
        )
    if not state.get("tracking_uri"):
        raise XlrayError(f"{config_path}: tracking.enabled is false, so MLflow holds nothing to report on")
    from xlray.tracking import client_for

    client = client_for(state["tracking_uri"])
    folder = join(cfg.output_dir, "report")
    paths = write_report(cfg, folder, state["tracking_uri"], state["parent_run_id"])
    for path in paths:
        client.log_artifact(state["parent_run_id"], str(path), "report")
    say(f"[report] {len(paths)} files in {redact(folder)}, logged to run {state['parent_run_id']}")
    return 0


def write_report(cfg: SweepConfig, folder: str | Path, uri: str | None, parent_run_id: str | None) -> list[Path]:
    """Write the report files into ``folder`` (none if tracking is off) and return their local paths: ``folder``'s
    own, or for a URI the copies in its scratch folder, each uploaded to ``folder`` once written."""
    if uri is None or parent_run_id is None:
        return []
    from xlray.sweep.runs import trial_runs
    from xlray.tracking import client_for

    client = client_for(uri)
    runs = trial_runs(client, cfg.tracking.experiment, parent_run_id)
    if not runs:
        return []
    local = scratch_dir(folder)
    swept = list(cfg.space)
    trials = trial_table(runs, swept)
    zero_shot = zero_shot_table(runs, swept)
    layers = layer_table(client, runs, swept)
    paths = [
        atomic(local / "trials.csv", lambda p: trials.write_csv(p)),
        atomic(local / "zero_shot.parquet", lambda p: zero_shot.write_parquet(p)),
        atomic(local / "layers.parquet", lambda p: layers.write_parquet(p)),
        atomic(local / "summary.md", lambda p: p.write_text(markdown(cfg, trials, zero_shot), encoding="utf-8")),
    ]
    if zero_shot.height:
        paths.append(atomic(local / "zero_shot.png", lambda p: plot_zero_shot(zero_shot, p)))
    if layers.height:
        paths.append(atomic(local / "layers.png", lambda p: plot_layers(layers, p)))
    if is_uri(folder):
        for path in paths:  # each file a whole object
            upload(path, join(folder, path.name))
    return paths


def identity(run: Any, swept: list[str]) -> dict[str, Any]:
    """What a trial is: its model and languages (tags), its hyperparameters (``hp.*`` params), and ``setting``, the
    hyperparameters as ``xlray.sweep.space.trial_label`` shows them (``reg_lambda=1-task=nli``)."""
    tags, params = run.data.tags, run.data.params
    hps = {k: v for k, v in sorted(params.items()) if k.startswith(HP)}
    return {"trial_id": tags.get("xlray.trial_id"), "model": tags.get("xlray.model"),
            "languages": tags.get("xlray.languages"), "setting": setting(params, swept), **hps}  # fmt: skip


def hyperparameters(params: dict[str, str], swept: list[str]) -> dict[str, Any]:
    """``{space key: value}`` from a trial's ``hp.<key>`` params; a whole sub-config (``evaluate.task``), logged
    flattened as ``hp.evaluate.task.kind`` ..., comes back as a dict. ``hp.*`` params of no key in ``swept``
    count as keys of their own."""
    found: dict[str, Any] = {}
    for key in swept:
        name = f"{HP}{key}"
        nested = {k.removeprefix(f"{name}."): v for k, v in params.items() if k.startswith(f"{name}.")}
        if name in params or nested:
            found[key] = params.get(name, nested)
    claimed = {f"{HP}{k}" for k in found}
    for name in params:
        if name.startswith(HP) and not any(name == c or name.startswith(f"{c}.") for c in claimed):
            found[name.removeprefix(HP)] = params[name]
    return found


def setting(params: dict[str, str], swept: list[str]) -> str:
    """The hyperparameters by their last field names, as ``trial_label`` names a trial; ``default`` if none."""
    parts = []
    for key, value in sorted(hyperparameters(params, swept).items()):
        if isinstance(value, dict):  # a whole sub-config, e.g. evaluate.task: named by its kind
            shown = str(value.get("kind", "+".join(map(str, value.values()))))
        else:
            shown = shown_value(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return "-".join(parts) or "default"


def shown_value(text: str) -> str:
    """A param as ``trial_label`` shows the value it came from: a float to 3 significant digits (MLflow logged
    ``1.0``, the label says ``1``), anything else as it is."""
    try:
        number = float(text)
    except ValueError:
        return text
    is_float = any(c in text for c in ".eE") or text.lower() in ("nan", "inf", "-inf")
    return f"{number:.3g}" if is_float else text


def trial_table(runs: list[Any], swept: list[str]) -> pl.DataFrame:
    rows = []
    for run in runs:
        finals = {k: v for k, v in run.data.metrics.items() if is_over_seeds(k)}
        rows.append({**identity(run, swept), "status": run.info.status, "run_id": run.info.run_id, **finals})
    return pl.DataFrame(rows, infer_schema_length=None).sort("model", "languages", "setting")


def zero_shot_table(runs: list[Any], swept: list[str]) -> pl.DataFrame:
    """``zero_shot.<condition>.<language>.<metric>[_std]``, ``...<metric>.vs_<other>.p_value_seeds`` (or its
    ``missing.*`` tag's reason) and ``...vs_<other>.p_value`` as rows."""
    rows: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        ident = identity(run, swept)
        values = [(k, v, False) for k, v in run.data.metrics.items()]
        values += [(k.removeprefix(MISSING), v, True) for k, v in run.data.tags.items() if k.startswith(MISSING)]
        for name, value, missing in values:
            score = parse_zero_shot(name)
            if score is None or (score.versus is not None and score.test not in (P_VALUE, P_VALUE_SEEDS)):
                continue
            if missing and not score.over_seeds:
                continue
            row = rows.setdefault((ident["trial_id"], score.condition, score.language, score.metric), {
                "trial_id": ident["trial_id"], "model": ident["model"], "languages": ident["languages"],
                "setting": ident["setting"], "condition": score.condition, "language": score.language,
                "metric": score.metric, "mean": None, "std": None,
                **dict.fromkeys(column for c in COMPARED for column in p_columns(c)),
            })  # fmt: skip
            if score.versus is None:
                row["std" if score.std else "mean"] = value
            else:
                over_seeds, why_not, over_examples = p_columns(score.versus)
                row[why_not if missing else over_seeds if score.over_seeds else over_examples] = value
    frame = pl.DataFrame(list(rows.values()), infer_schema_length=None)
    return frame.sort("model", "languages", "setting", "language", "condition") if frame.height else frame


def p_columns(condition: str) -> tuple[str, str, str]:
    """The columns of the tests against an earlier condition: over seeds, why that one is missing, over examples."""
    return f"p_seeds_vs_{condition}", f"p_seeds_vs_{condition}_missing", f"p_vs_{condition}"


def layer_table(client: Any, runs: list[Any], swept: list[str]) -> pl.DataFrame:
    """Every per-layer metric's history (step = layer) of every trial."""
    rows = []
    for run in runs:
        ident = identity(run, swept)
        for name in run.data.metrics:
            if name.startswith(PER_LAYER) and not name.startswith(NOT_PER_LAYER):
                for m in client.get_metric_history(run.info.run_id, name):
                    rows.append({**{k: ident[k] for k in ("trial_id", "model", "languages", "setting")},
                                 "metric": name, "layer": m.step, "value": m.value})  # fmt: skip
    return pl.DataFrame(rows, infer_schema_length=None)


def markdown(cfg: SweepConfig, trials: pl.DataFrame, zero_shot: pl.DataFrame) -> str:
    lines = [f"# Sweep {cfg.name}: {trials.height} trials", ""]
    if zero_shot.height:
        lines += ["| model | languages | setting | language | metric | " + " | ".join(cfg.conditions) + " |",
                  "|---" * (5 + len(cfg.conditions)) + "|"]  # fmt: skip
        for key, group in zero_shot.group_by(
            ["model", "languages", "setting", "language", "metric"], maintain_order=True
        ):
            cells = []
            for cond in cfg.conditions:
                row = group.filter(pl.col("condition") == cond)
                cells.append(cell(row.row(0, named=True)) if row.height else "")
            lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
        lines += ["", "mean ± std over seeds; against base (b) and adjusted (a): p_seeds, Welch's t over per-seed "
                  "scores (seed variance in its null; n/a below 3 seeds per condition); p, paired test over examples "
                  "for this set of seeds only (seeds held fixed, so seed variance alone makes it small)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def cell(row: dict[str, Any]) -> str:
    """``mean ± std (b p_seeds=… p=…, a …)``: each earlier condition's test over seeds, then over examples."""
    text = f"{row['mean']:.3f}" if row["mean"] is not None else "–"
    if row["std"] is not None:
        text += f" ± {row['std']:.3f}"
    tests = []
    for name, short in (("base", "b"), ("adjusted", "a")):
        seeds, why_not, examples = (row.get(column) for column in p_columns(name))
        shown = [f"p_seeds={seeds:.3g}"] if seeds is not None else ["p_seeds=n/a"] if why_not else []
        shown += [f"p={examples:.3g}"] if examples is not None else []
        if shown:
            tests.append(f"{short} " + " ".join(shown))
    return text + (f" ({', '.join(tests)})" if tests else "")


def plot_zero_shot(frame: pl.DataFrame, path: Path) -> None:
    """Grouped bars per (model, languages, setting) and language: one bar per condition, std as error bars."""
    plt = pyplot()

    data = frame.filter(pl.col("language") != "targets_mean")
    groups = data.select("model", "languages", "setting", "language", "metric").unique(maintain_order=True).rows()
    conditions = data["condition"].unique(maintain_order=True).to_list()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) * len(conditions)), 4))
    width = 0.8 / max(1, len(conditions))
    keys = ("model", "languages", "setting", "language", "metric")
    for j, cond in enumerate(conditions):
        means, stds = [], []
        for group in groups:
            match = [pl.col(k) == v for k, v in zip(keys, group, strict=True)]
            row = data.filter(*match, pl.col("condition") == cond)
            means.append(row["mean"][0] if row.height and row["mean"][0] is not None else 0.0)
            stds.append(row["std"][0] if row.height and row["std"][0] is not None else 0.0)
        ax.bar([i + j * width for i in range(len(groups))], means, width, yerr=stds, label=cond, capsize=2)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))])
    ax.set_xticklabels([f"{g[0]} {g[3]}\n{g[2]}\n{g[4]}" for g in groups], fontsize=7)
    ax.set_ylabel("zero-shot score (mean over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def plot_layers(frame: pl.DataFrame, path: Path) -> None:
    """One panel per model and language group: aligned/unaligned ratio (and concept scores) against the layer."""
    plt = pyplot()

    shown = frame.filter(pl.col("metric").str.contains(r"^align\..*\.ratio\.all$|\.calign|\.colap"))
    panels = shown.select("model", "languages").unique(maintain_order=True).rows()
    if not panels:
        shown, panels = frame, frame.select("model", "languages").unique(maintain_order=True).rows()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (model, langs) in zip(axes[0], panels, strict=True):
        part = shown.filter((pl.col("model") == model) & (pl.col("languages") == langs))
        for (metric, setting), curve in part.group_by(["metric", "setting"], maintain_order=True):
            curve = curve.sort("layer")
            ax.plot(curve["layer"], curve["value"], marker="o", label=f"{metric} [{setting}]")
        ax.set_title(f"{model}, {langs}")
        ax.set_xlabel("layer")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
