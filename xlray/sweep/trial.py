"""One sweep trial as a Ray Tune function, written out as a recipe.

adjust -> per condition: fine-tune on English and test zero-shot (base / adjusted / continual) -> alignment per
layer of the resulting checkpoints -> optional concepts (CALIGN/COLAP) -> optional sentence alignment (MEXA) ->
result.json (last) -> final report.

Everything a trial logs goes into one MLflow run, a child of the sweep's parent run, found again by its trial id
when a resumed sweep restarts the trial. Stage outputs live in ``output_dir/trials/<trial id>`` (a shared path or
a URI: whatever node runs the trial reads and writes it there) and are reused when a restarted trial runs again,
so a resumed sweep redoes only unfinished work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from xlray import result_names as names
from xlray.configs import ModelConfig, TrackingConfig
from xlray.outputs import atomic_text, read_json, write_json
from xlray.storage import join, use_storage
from xlray.sweep import alignment
from xlray.sweep.config import SweepConfig
from xlray.sweep.runs import find_trial_run
from xlray.sweep.space import SWEPT, stage_configs, trial_label, tuned_checkpoint
from xlray.textio import is_file, open_binary
from xlray.tracking import NullSink, PrefixedSink, Sink, open_run
from xlray.world.assets import prepare_world

RESULT = "result.json"
EVENTS = "events.jsonl"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial needs from the driver (plain strings, so Tune can store it with the experiment)."""

    sweep_json: str
    output_dir: str  # an absolute path every node shares, or a URI
    tracking_uri: str | None  # None: tracking off
    parent_run_id: str | None


def run_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """The Tune trainable: run (or finish) this trial's pipeline and report its results."""
    from ray import tune

    cfg = SweepConfig.model_validate_json(setup.sweep_json)
    use_storage(cfg.storage)  # this worker's S3 endpoint, on whatever node it runs
    trial_id = tune.get_context().get_trial_id()
    folder = join(setup.output_dir, "trials", trial_id)
    trial = {k: config[k] for k in sorted(config)}
    done = read_json(join(folder, RESULT))
    if done is not None and done["trial"] == trial:
        log_event(folder, "reused")  # finished before the driver died, not yet recorded by Tune
        tune.report(done["result"])
        return
    log_event(folder, "started")
    started = time.perf_counter()
    if cfg.world is not None:
        prepare_world(cfg.world.output, cfg.world.families, cfg.world.world, cfg.world.pretrain)
    configs = stage_configs(cfg, trial, folder, TrackingConfig(enabled=False))
    steps = pipeline(cfg, trial, configs, folder)
    result: dict[str, Any] = {}
    with trial_run(cfg, setup, trial_id, trial) as sink:
        for k, step in enumerate(steps, 1):
            result.update(step(sink))
            if k == len(steps):
                result["trial_seconds"] = time.perf_counter() - started
                write_json(join(folder, RESULT), {"trial": trial, "result": numbers(result)})
                log_event(folder, "finished")
            if k == len(steps) or cfg.scheduler.kind != "none":  # intermediate results only feed a scheduler
                if not report(numbers(result)):  # Tune stopped the trial (its scheduler): the run ends FINISHED
                    if k < len(steps):
                        sink.set_tags({"xlray.stopped_early": "true"})
                    raise SystemExit(0)  # hand the stop back to Tune, as its report did


def report(result: dict[str, float]) -> bool:
    """Report to Tune; False if Tune stopped the trial meanwhile (it then ends ``tune.report`` with SystemExit)."""
    from ray import tune

    try:
        tune.report(result)
    except SystemExit:
        return False
    return True


def pipeline(cfg: SweepConfig, trial: dict[str, Any], configs: dict[str, Any], folder: str) -> list:
    """The trial's steps in order; each logs into the trial's sink and returns Tune result keys."""
    adjust = configs["adjust"]
    measured = cfg.alignment_checkpoints()
    steps = []
    if adjust is not None:
        steps.append(lambda sink: adjust_step(adjust, measured, sink))
    for ev in configs["evaluate"]:
        measure = f"{ev.condition}-tuned" in measured and ev.task.kind != "xsr"  # XSR fine-tunes nothing
        steps.append(lambda sink, ev=ev, measure=measure: evaluate_step(ev, adjust, measure, folder, sink))
    if cfg.concepts is not None:
        from xlray.sweep.concepts import run_concepts_step

        steps.append(lambda sink: run_concepts_step(cfg, trial, configs, folder, sink))
    if cfg.sentence_alignment is not None:
        from xlray.sweep.sentence_alignment import run_sentence_alignment_step

        steps.append(lambda sink: run_sentence_alignment_step(cfg, trial, folder, sink))
    return steps


def adjust_step(adjust: Any, measured: list[str], sink: Sink) -> dict[str, Any]:
    from xlray.adjust.run import run_adjust

    run_adjust(adjust, into=PrefixedSink(sink, "adjust."))
    out: dict[str, Any] = {}
    for name, stats in alignment.adjust_stats(adjust).items():
        if name in measured:
            out.update(alignment.record(sink, name, stats, adjust.loss.layer))
    return out


def evaluate_step(ev: Any, adjust: Any, measure: bool, folder: str, sink: Sink) -> dict[str, Any]:
    """One condition: fine-tune and test zero-shot over the seeds; then the alignment of its first seed's model."""
    from xlray.evaluate.run import run_evaluation

    summary = run_evaluation(ev, into=PrefixedSink(sink, names.zero_shot_prefix(ev.condition)))
    manifest = read_json(join(ev.output_dir, "manifest.json")) or {}
    out = {names.zero_shot(ev.condition, lang, k): v for lang, row in summary.items() for k, v in row.items()}
    targets = manifest.get("targets_mean", {})
    out.update({names.zero_shot(ev.condition, names.TARGETS_MEAN, k): v for k, v in targets.items()})
    if measure:
        name = f"{ev.condition}-tuned"
        stats = alignment.checkpoint_stats(tuned_checkpoint(ev), adjust, join(folder, "align", f"{name}.json"))
        out.update(alignment.record(sink, name, stats, adjust.loss.layer))
    return out


@contextmanager
def trial_run(cfg: SweepConfig, setup: TrialSetup, trial_id: str, trial: dict[str, Any]) -> Iterator[Sink]:
    """The trial's MLflow run: the one tagged with this trial id under the parent, else a new one."""
    if setup.tracking_uri is None:
        yield NullSink()
        return
    tracking = cfg.tracking.model_copy(update={"uri": setup.tracking_uri})
    run_id = find_trial_run(setup.tracking_uri, cfg.tracking.experiment, setup.parent_run_id, trial_id)
    tags = {
        "xlray.sweep": cfg.name,
        "xlray.role": "trial",
        "xlray.trial_id": trial_id,
        "xlray.model": trial["model"],
        "xlray.languages": trial["languages"],
    }
    with open_run(tracking, trial_label(trial), tags=tags, parent_run_id=setup.parent_run_id, run_id=run_id) as sink:
        hparams = {f"{names.HP_PARAM}{k}": v for k, v in trial.items() if k not in SWEPT}
        model: ModelConfig = cfg.models[trial["model"]]
        sink.log_params({"model": trial["model"], "languages": trial["languages"], **hparams,
                         "model_config": model.model_dump(mode="json")})  # fmt: skip
        yield sink


def log_event(folder: str, event: str) -> None:
    """Add to the trial's history (started / finished / reused), which shows what a resume redid; the file is
    written whole each time, since an object store cannot append (only the trial's own worker writes it)."""
    path = join(folder, EVENTS)
    before = ""
    if is_file(path):
        with open_binary(path) as f:
            before = f.read().decode("utf-8")
    with atomic_text(path) as f:
        f.write(before + json.dumps({"event": event, "time": time.time()}) + "\n")


def numbers(result: dict[str, Any]) -> dict[str, float]:
    """Numbers only, NaN and None dropped (Tune and MLflow both want plain finite numbers)."""
    return {k: float(v) for k, v in result.items() if isinstance(v, int | float) and v == v}
