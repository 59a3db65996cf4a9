"""`xlray adjust CONFIG`: cross-lingual adjustment of a multilingual encoder, written out as a recipe.

load config -> aligned pairs (cached) -> trainable model and frozen original -> statistics before -> train with
accelerate -> statistics after -> checkpoint, statistics, manifest (last) -> MLflow.

Output folder (a local path or an ``s3://`` / ``gs://`` URI; ``xlray.storage``):
    pairs.parquet, pairs.json   aligned pairs (train and held-out; the continual-learning pool) and their counts
    checkpoint/                 model + tokenizer (safetensors), adjust_config.yaml, alignment_stats.json; for a
                                URI built in the output's scratch folder, then uploaded
    stats.json                  held-out distances per language and layer, before and after
    manifest.json               written last: the run is complete iff it exists; names the checkpoint's location
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import yaml

from xlray.adjust.config import AdjustConfig
from xlray.adjust.loss import alignment_loss
from xlray.adjust.measure import distance_stats, flat_metrics
from xlray.adjust.pairs import AlignedPairs, build_pairs, corpus_paths, read_pairs, write_pairs
from xlray.configs import TrackingConfig, load_config
from xlray.console import log_to
from xlray.datasets import corpus_name
from xlray.errors import XlrayError
from xlray.models import describe, encoder_of, load_model, refuse_llm, write_checkpoint
from xlray.outputs import read_json, write_json
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.storage import check_output, join, make_dirs, redact, use_storage
from xlray.storage import name as last_name
from xlray.textio import is_file
from xlray.tracking import Sink, open_run

MANIFEST = "manifest.json"


def main(config_path: str | Path) -> int:
    """CLI entry: run the adjustment described by a YAML config."""
    run_adjust(load_config(config_path, AdjustConfig))
    return 0


def run_adjust(cfg: AdjustConfig, into: Sink | None = None) -> dict[str, Any]:
    """Run (or skip, if already finished with this config) one adjustment; returns its manifest.

    ``into``: log into that open sink (a sweep trial's run) instead of a run of its own.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    out = cfg.output_dir
    use_storage(cfg.storage)
    check_output(out, "output_dir")  # an unusable URI fails here, before anything is written
    log_to(out)  # libraries' logs to out/xlray.log (unless an enclosing stage chose a file)
    done = finished(join(out, MANIFEST), cfg, "adjustment")
    if done is not None:
        return done
    refuse_llm(cfg.model, "adjust")
    make_dirs(out)
    set_seed(cfg.seed)
    fresh_accelerator_state(cfg.optim.mixed_precision)
    accelerator = Accelerator(
        mixed_precision=cfg.optim.mixed_precision,
        gradient_accumulation_steps=cfg.optim.grad_accum,
        cpu=cfg.optim.device == "cpu",
        # Parameters above the chosen layer (and BERT's pooler) get no gradient; DDP must be told.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )

    # 1. Aligned pairs: sampled, eflomal-aligned, split into train and held-out; built once (by the main process,
    #    the others read its file) and reused by a re-run after a failure.
    with accelerator.main_process_first():
        pairs = aligned_pairs(cfg, out)
    train, heldout = pairs.subset(split="train"), pairs.subset(split="heldout")

    # 2. The model to train (float32 weights; mixed precision is accelerate's autocast) and the frozen original.
    model_cfg = cfg.model.model_copy(update={"dtype": "float32"})
    lm = load_model(model_cfg, str(accelerator.device))
    original = load_model(model_cfg, str(accelerator.device))
    check_layer(cfg.loss.layer, lm.num_layers)
    frozen = encoder_of(original).requires_grad_(False).eval()
    lm.model.requires_grad_(False)  # mT5: only the encoder stack (with the shared embeddings) is trained
    encoder = encoder_of(lm).requires_grad_(True).train()
    tokenizer, max_length = lm.tokenizer, lm.max_length
    stats_args = dict(tokenizer=tokenizer, pooling=cfg.loss.pooling, max_length=max_length)

    tracking = cfg.tracking if accelerator.is_main_process else TrackingConfig(enabled=False)
    into = into if accelerator.is_main_process else None
    name = run_name("adjust", last_name(cfg.model.name), "+".join(cfg.languages))
    with open_run(tracking, name, out, tags=run_tags("adjust"), into=into) as sink:
        sink.log_params({"config": cfg.model_dump(mode="json"), "model_info": describe(lm)})
        corpora = [[str(p) for p in corpus_paths(cfg.corpus, lang)] for lang in cfg.languages]
        sink.log_datasets({corpus_name(files[0]): files for files in corpora}, "train")
        sink.log_metrics({f"pairs.{lang}.{k}": v for lang, c in pairs.counts.items() for k, v in c.items()})

        # 3. Held-out statistics before training.
        before = distance_stats(encoder, frozen, pairs=heldout, **stats_args)
        sink.log_metrics(flat_metrics(before, "before"))

        # 4. Optimiser (Adam, Efimov's betas and eps), linear warm-up then constant, seeded shuffling.
        optimizer = torch.optim.Adam(
            [p for p in encoder.parameters() if p.requires_grad],
            lr=cfg.optim.lr,
            betas=cfg.optim.betas,
            eps=cfg.optim.eps,
        )
        loader = torch.utils.data.DataLoader(
            list(range(len(train))),
            batch_size=cfg.optim.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(cfg.seed),
            collate_fn=lambda rows: train.select(rows).batch,
        )
        encoder, optimizer, loader = accelerator.prepare(encoder, optimizer, loader)
        total_steps = math.ceil(len(loader) / cfg.optim.grad_accum) * cfg.optim.epochs
        warmup = math.ceil(cfg.optim.warmup_ratio * total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )

        # 5. Training: one optimiser step per grad_accum micro-batches; the loss logged per optimiser step.
        step, window = 0, []
        for _epoch in range(cfg.optim.epochs):
            for batch in loader:
                with accelerator.accumulate(encoder):
                    with accelerator.autocast():
                        parts = alignment_loss(encoder, frozen, tokenizer, batch, cfg.loss, max_length)
                    accelerator.backward(parts.total)
                    if accelerator.sync_gradients and cfg.optim.max_grad_norm:
                        accelerator.clip_grad_norm_(encoder.parameters(), cfg.optim.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                window.append((parts.total.item(), parts.align.item(), parts.reg.item(), parts.lost_links))
                if accelerator.sync_gradients:
                    lr = scheduler.get_last_lr()[0]
                    scheduler.step()
                    step += 1
                    sink.log_metrics(step_metrics(window, lr), step=step)
                    window = []

        # 6. Held-out statistics after training, then the outputs: data first, manifest last.
        accelerator.wait_for_everyone()
        trained = accelerator.unwrap_model(encoder)  # distance_stats sets accelerate's autocast wrapper aside
        after = distance_stats(trained, frozen, pairs=heldout, **stats_args)
        sink.log_metrics(flat_metrics(after, "after"))
        stats = {"layer": cfg.loss.layer, "pooling": cfg.loss.pooling, "before": before, "after": after}
        manifest = {}
        if accelerator.is_main_process:
            checkpoint = save_checkpoint(lm, cfg, stats, out)
            write_json(join(out, "stats.json"), stats)
            sink.log_artifact(join(out, "stats.json"))
            sink.log_artifact(join(out, "pairs.json"))
            sink.set_tags({"checkpoint": checkpoint})
            manifest = {
                "stage": "adjust",
                "config": result_config(cfg),
                "model": describe(lm),
                "checkpoint": checkpoint,
                "pairs": "pairs.parquet",
                "counts": pairs.counts,
                "optimizer_steps": step,
                "stats": "stats.json",
                "mlflow_run_id": sink.run_id,
            }
            write_json(join(out, MANIFEST), manifest)
            print(summary(cfg, pairs, before, after, checkpoint))
    return manifest


def fresh_accelerator_state(mixed_precision: str) -> None:
    """accelerate keeps one process-wide state and refuses another precision; a new run in the same process
    (tests, a sweep worker) may ask for one, so forget the old choice (the process group itself is kept)."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and str(AcceleratorState().mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()


def aligned_pairs(cfg: AdjustConfig, out: str) -> AlignedPairs:
    """Build the aligned pairs, or reuse ``pairs.parquet`` from an earlier attempt with the same corpus settings."""
    key = cfg.model_dump(mode="json", include={"corpus", "languages", "pairs", "seed"})
    meta, table = join(out, "pairs.json"), join(out, "pairs.parquet")
    saved = read_json(meta) if is_file(table) else None
    if saved is not None and saved.get("key") == key:
        pairs = read_pairs(table)
        pairs.counts = saved["counts"]
        return pairs
    pairs = build_pairs(cfg)
    write_pairs(pairs, table)
    write_json(meta, {"key": key, "counts": pairs.counts})
    return pairs


def check_layer(layer: int, num_layers: int) -> None:
    if not -(num_layers + 1) <= layer <= num_layers:
        raise XlrayError(
            f"loss.layer: {layer} is out of range; the model has hidden states 0..{num_layers} (or -1 for the last)"
        )


def step_metrics(window: list[tuple[float, float, float, int]], lr: float) -> dict[str, float]:
    """Means over the micro-batches of one optimiser step."""
    n = len(window)
    return {
        "loss": sum(w[0] for w in window) / n,
        "loss.align": sum(w[1] for w in window) / n,
        "loss.reg": sum(w[2] for w in window) / n,
        "lost_links": float(sum(w[3] for w in window)),
        "lr": lr,
    }


def save_checkpoint(lm: Any, cfg: AdjustConfig, stats: dict[str, Any], out: str) -> str:
    """save_pretrained model and tokenizer with the config and statistics, written whole into ``out/checkpoint``
    (``xlray.models.write_checkpoint``); returns its location."""

    def write(tmp: Path) -> None:
        lm.model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
        (tmp / "adjust_config.yaml").write_text(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        write_json(tmp / "alignment_stats.json", stats)

    return write_checkpoint(join(out, "checkpoint"), write)


def summary(cfg: AdjustConfig, pairs: AlignedPairs, before: dict, after: dict, checkpoint: str) -> str:
    """A few lines for the terminal: what was kept and dropped, and the held-out distance before -> after."""
    lines = [f"adjust: checkpoint in {redact(checkpoint)}"]
    layer = cfg.loss.layer
    for lang, c in pairs.counts.items():
        lines.append(
            f"  {lang}: {c['lines']} lines, {c['too_long']} too long, {c['sampled']} sampled, "
            f"{c['no_alignable_word']} with no alignable word, {c['identical_links_dropped']} identical links "
            f"dropped; {c['train']} train / {c['heldout']} held-out pairs, {c['links']} links"
        )
        b, a = before[lang]["aligned"][layer], after[lang]["aligned"][layer]
        lines.append(f"      held-out aligned distance (layer {layer}): {b:.4g} -> {a:.4g}")
    return "\n".join(lines)
