"""`xlray evaluate CONFIG`: fine-tune on English, evaluate zero-shot on every language, over seeds, as a recipe.

load config -> read and check the task data -> per seed: load the starting checkpoint, build the head, fine-tune
(with alignment batches if continual), save the checkpoint, evaluate each language, write per-example outcomes
-> mean and spread over seeds -> paired tests against earlier runs (both ``xlray.evaluate.summary``) -> summary,
manifest (last) -> MLflow. Metric names: ``xlray.result_names``.

Output folder (a local path or an ``s3://`` / ``gs://`` URI; ``xlray.storage``):
    seed-<s>/checkpoint/        fine-tuned model + tokenizer (safetensors) and head.safetensors (if saved); for a
                                URI built in the seed folder's scratch folder, then uploaded
    seed-<s>/outcomes.parquet   per-example outcomes (see ``xlray.tasks.outcomes``)
    seed-<s>/result.json        scores, counts, per-epoch losses, the checkpoint's location; written last, so the
                                seed is done iff it exists
    summary.json                per language and metric: mean, std and number of seeds
    significance.parquet        tests of this condition against ``significance.compare_with`` runs, over seeds
                                (p_value_seeds) and over examples for this set of seeds (p_value)
    manifest.json               written last: the run is complete iff it exists
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlray import result_names as names
from xlray import runtime
from xlray.configs import load_config
from xlray.console import log_to
from xlray.errors import XlrayError
from xlray.evaluate.summary import (
    SIGNIFICANCE,
    flat_summary,
    missing_test_metrics,
    paired_test_metrics,
    significance,
    summarise,
    table,
)
from xlray.models import LoadedModel, describe, load_model, refuse_llm, write_checkpoint
from xlray.outputs import read_json, write_json, write_parquet
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.storage import check_output, join, make_dirs, use_storage
from xlray.storage import name as last_name
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.heads import TaskModel
from xlray.tasks.outcomes import OUTCOMES, outcome_frame, seed_folder
from xlray.tasks.protocol import TaskModule, fine_tunes, task_module
from xlray.tasks.train import fine_tune
from xlray.tracking import PrefixedSink, Sink, open_run

MANIFEST = "manifest.json"


def main(config_path: str | Path) -> int:
    """CLI entry: run the evaluation described by a YAML config and print the per-language table."""
    cfg = load_config(config_path, EvaluateConfig)
    summary = run_evaluation(cfg)
    print(table(cfg, summary))
    return 0


def run_evaluation(
    cfg: EvaluateConfig, parent_run_id: str | None = None, into: Sink | None = None
) -> dict[str, dict[str, float]]:
    """Run (or reuse, if already finished with this config) one condition over its seeds.

    ``into``: log into that open sink (a sweep trial's run), each seed under ``seed<s>.``, instead of runs of
    their own.

    Returns ``{language: {metric: mean over seeds, metric + "_std": sample std (NaN for one seed)}}``.
    """
    out = cfg.output_dir
    use_storage(cfg.storage)
    check_output(out, "output_dir")  # an unusable URI fails here, before anything is written
    log_to(out)  # libraries' logs to out/xlray.log (unless an enclosing stage chose a file)
    done = finished(join(out, MANIFEST), cfg, "evaluation", refuse=False)  # else each seed says what it can reuse
    if done is not None:
        return done["summary"]
    refuse_llm(cfg.model, "evaluate")
    make_dirs(out)
    task = task_module(cfg.task.kind)
    seeds = cfg.seeds if fine_tunes(task) else cfg.seeds[:1]  # XSR has no training: one run says it all
    tags = run_tags("evaluate", task=cfg.task.kind, condition=cfg.condition)
    with open_run(cfg.tracking, evaluate_run_name(cfg), out, tags, parent_run_id, into=into) as sink:
        sink.log_params({"config": result_config(cfg), "seeds_run": len(seeds)})
        data = task.load(cfg)
        for context, files in inputs(cfg).items():
            sink.log_datasets(files, context)
        results = {
            seed: run_seed(
                cfg, task, data, seed, sink.run_id, PrefixedSink(into, names.seed_prefix(seed)) if into else None
            )
            for seed in seeds
        }

        summary = summarise(cfg, results)
        sink.log_metrics(flat_summary(summary))
        write_json(join(out, "summary.json"), summary)
        sink.log_artifact(join(out, "summary.json"))
        tests = significance(cfg, out, seeds)
        if tests is not None:
            sink.log_metrics(paired_test_metrics(tests))
            for name, reason in missing_test_metrics(tests).items():
                sink.log_missing(name, reason)
            sink.log_artifact(join(out, SIGNIFICANCE))
        manifest = {
            "stage": "evaluate",
            "config": result_config(cfg),
            "seeds": {str(s): f"seed-{s}" for s in seeds},
            "summary": summary["languages"],
            "targets_mean": summary["targets_mean"],
            "mlflow_run_id": sink.run_id,
        }
        write_json(join(out, MANIFEST), manifest)
    return summary["languages"]


def inputs(cfg: EvaluateConfig) -> dict[str, dict[str, str | list[str]]]:
    """What the condition reads, for MLflow: the task's files, plus the aligned-pair pool if continual."""
    files = cfg.task.inputs(cfg.languages)
    if cfg.continual.enabled:
        files.setdefault("train", {})["continual pairs"] = cfg.continual.pairs
    return files


def run_seed(
    cfg: EvaluateConfig, task: TaskModule, data: Any, seed: int, parent_id: str | None, into: Sink | None = None
) -> dict[str, Any]:
    """One seed: fine-tune (unless XSR), evaluate every language, write outcomes then ``result.json``."""
    folder = seed_folder(cfg.output_dir, seed)
    done = read_json(join(folder, "result.json"))
    if done is not None:
        if done.get("config") != seed_key(cfg):
            raise XlrayError(
                f"{join(folder, 'result.json')}: output_dir holds a finished seed of an evaluation with a different "
                "config; choose another output_dir or delete that one"
            )
        return done
    make_dirs(folder)
    seed_everything(seed)
    device = runtime.device(cfg.train.device)
    trains = fine_tunes(task)
    model_cfg = cfg.model.model_copy(update={"dtype": "float32"}) if trains else cfg.model
    tags = run_tags("evaluate", task=cfg.task.kind, condition=cfg.condition, seed=str(seed))
    name = f"{evaluate_run_name(cfg)}-seed{seed}"
    with open_run(cfg.tracking, name, cfg.output_dir, tags, parent_id, into=into) as sink:
        lm = load_model(model_cfg, device)
        sink.log_params({"seed": seed, "model_info": describe(lm)})
        model, history, counts, checkpoint = None, [], {}, None
        if trains:
            model = task.build(cfg, lm)
            features, counts = task.train_features(cfg, lm, data)
            extra = None
            if cfg.continual.enabled:
                from xlray.tasks.continual import alignment_terms

                extra, pool_counts = alignment_terms(cfg, lm, seed)
                counts.update(pool_counts)
            sink.log_metrics({names.data_count(k): v for k, v in counts.items()})
            history = fine_tune(model, features, task.loss, cfg.task, cfg.train, seed, sink, extra)
            if cfg.train.save_checkpoints:
                checkpoint = save_checkpoint(lm, model, join(folder, "checkpoint"))
                sink.set_tags({"checkpoint": checkpoint})
        langs = [task.evaluate(cfg, lm, model, data, lang) for lang in cfg.languages]
        for res in langs:
            sink.log_metrics({names.score(res.language, k): v for k, v in res.scores().items()})
            sink.log_metrics({names.count(res.language, k): v for k, v in res.counts.items()})
        write_parquet(outcome_frame(langs, cfg.condition, cfg.task.kind, seed), join(folder, OUTCOMES))
        result = {
            "config": seed_key(cfg),
            "seed": seed,
            "scores": {res.language: res.scores() for res in langs},
            "counts": {"train": counts, **{res.language: res.counts for res in langs}},
            "history": history,
            "checkpoint": checkpoint,
            "mlflow_run_id": sink.run_id,
        }
        write_json(join(folder, "result.json"), result)
    return result


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(lm: LoadedModel, model: TaskModel, final: str) -> str:
    """Model and tokenizer (save_pretrained, safetensors) plus the head's weights, written whole at ``final``
    (``xlray.models.write_checkpoint``); returns its location."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        lm.model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(tmp / "head.safetensors"))

    return write_checkpoint(final, write)


def seed_key(cfg: EvaluateConfig) -> dict[str, Any]:
    """The config fields that decide one seed's result (not tracking, storage, the seed list or the comparisons)."""
    return cfg.model_dump(mode="json", exclude={"tracking", "storage", "significance", "seeds"})


def evaluate_run_name(cfg: EvaluateConfig) -> str:
    return run_name("evaluate", cfg.task.kind, cfg.condition, last_name(cfg.model.name))
