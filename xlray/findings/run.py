"""`xlray findings CONFIG`: does xlray find the alignment that was planted, and only where it was planted?

load config -> the world and the random-init tiny model (``assets/``) -> its pretrained twins, one per dose of
the planting knob (``assets/models/<family>-<knob>-<dose>``, cached by their recipe) -> the held-out probes
(``xlray.findings.planted``) -> per model, the translation advantage per meaning and layer and the concept
clusters per layer (``xlray.findings.concepts``) -> the findings, each
a paired bootstrap over the held-out meanings with a verdict (``xlray.findings.verdict``) -> findings.json,
findings.md, the plots, manifest (last) -> one MLflow run.

The knob is a pretraining field (``tlm_share``, ``code_switch``: one world, one random-init model) or a world
field (``anchors``, ``word_order``: each dose its own world, tokenizer and random-init model under
``assets/<knob>-<dose>/``, so each twin has its own control). Every world says the same held-out meanings, and
no world is probed on a concept that any dose's world writes as an anchor, so the paired units are the same.

The findings, all on the translation advantage averaged over layers unless said otherwise:

- ``planted-at-<dose>``: the model pretrained at that dose beats its random-init twin. At dose 0 nothing is planted,
  so it must come out "not reproduced"; at the highest dose "reproduced".
- ``dose-response``: the highest dose's planted effect (its twin over its random-init control) beats dose 0's; for a
  pretraining knob the control is one model, so this is the highest dose's twin against dose 0's.
- ``depth``: at the highest dose, the last layer beats the embeddings (after Mousi et al. 2024, who find
  alignment rising with depth; here on the word-level advantage, not CALIGN).

- ``related-gap-planted``: at the highest dose, the gap cos(translation) - cos(unrelated word) (Efimov et al.'s
  related vs unrelated pairs) is wider than in the random-init twin. Unlike the advantage, it also counts what
  class and context share, so it is the looser test.

Then on the concept clusters of each layer (``xlray.findings.concepts``), ARI averaged over layers, each a paired
bootstrap over the gold concepts:

- ``concepts-planted``: at the highest dose, translations share clusters more than in the random-init twin (ARI
  against the gold concepts).
- ``concepts-dose-response``: the same, the highest dose's twin against dose 0's.
- ``classes-learned``: pretraining at dose 0 (monolingual text only) clusters words by their gold class more than
  random init does: what the world's grammar teaches without parallel data.

CALIGN, COLAP and purity per layer and model go into findings.json ("concepts") and concepts.png.

Last, on the world's parallel text alone (``xlray.findings.dictionary``):

- ``dictionary-planted``: on the highest dose's world, the eflomal dictionary (as the concepts stage builds it)
  recovers the gold dictionary better than eflomal on the same text with its sentence pairs rotated apart;
  precision and recall per language go into findings.json ("dictionary").

Then, unless ``transfer.enabled`` is false, the seed papers' transfer findings on the twin at ``transfer.dose``
(``xlray.findings.transfer``): adjustment improves zero-shot NLI in each language, continual learning improves it
further (both over >= 3 fine-tuning seeds, Welch's t), adjustment separates related from unrelated words,
fine-tuning forgets it, continual learning keeps more of it, and fine-tuning raises alignment.

Output folder:
    assets/            the world and the tiny models (reused by a later run), unless ``assets`` names a written one;
                       for a world knob, one assets/<knob>-<dose>/ per dose
    transfer/          adjust/ and evaluate/<base|adjusted|continual>/: the stages' own outputs (resumed if there)
    findings.json      the findings (effect, 95% CI, p, smallest effect, verdict), the advantage per layer and
                       model ("curves"), the mean cosine gaps translation - control ("cosine_gap") and
                       translation - unrelated ("related_gap"), the concept metrics ("concepts"), the
                       dictionary's precision and recall per language ("dictionary") and the transfer part
                       ("transfer": accuracy per condition, language and seed; gap and advantage per layer)
    findings.md        the same as a table
    advantage.png      the translation advantage against the layer, one line per model
    concepts.png       ARI, class ARI, purity, CALIGN and COLAP against the layer, one line per model
    transfer.png       zero-shot accuracy per language and condition, the related gap per layer and model
    manifest.json      written last: the run is complete iff it exists
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlray.configs import ModelConfig, load_config
from xlray.console import log_to, say, table
from xlray.findings.concepts import (
    CONCEPT_METRICS,
    by_class,
    by_concept,
    concept_points,
    layer_scores,
    mean_class_ari,
    mean_concept_ari,
)
from xlray.findings.config import WORLD_KNOBS, FindingsConfig
from xlray.findings.planted import Probe, probe_scores, probes
from xlray.findings.report import markdown, plot_concepts, plot_curves, plot_transfer
from xlray.findings.verdict import Finding, paired_finding
from xlray.outputs import atomic, atomic_text, write_json
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.tracking import open_run
from xlray.world.build import World, WorldConfig

STAGE = "findings"
MANIFEST = "manifest.json"
RANDOM_INIT = "random init"
MEASURE = (
    "Translation advantage: over the gold links of held-out parallel sentences, the share of links where a"
    " target-language word is closer (cosine of mean-pooled word vectors) to its English translation than to a"
    " same-class control word in the same English context, minus 1/2; 0 = no translation-specific alignment."
    " Related gap: cos(translation) - cos(an unrelated English word). Both are paired bootstrap differences over"
    " held-out meanings. Concepts: Ward clusters (one per gold concept) of each language's word-type vectors, ARI"
    " against the gold concepts or classes, averaged over layers, paired bootstrap over gold concepts."
    " Dictionary: recall of eflomal's top translations against the gold dictionary, paired bootstrap over gold"
    " entries against the same text with its pairs rotated apart."
)


def main(config_path: str | Path) -> int:
    """CLI entry: run the findings check described by a YAML config; print the findings table."""
    cfg = load_config(config_path, FindingsConfig)
    manifest = run_findings(cfg)
    rows = [
        [f[k] for k in ("name", "effect", "ci_low", "ci_high", "smallest", "verdict")] for f in manifest["findings"]
    ]
    table(f"Findings on tiny {cfg.family}", ["finding", "effect", "ci low", "ci high", "smallest effect", "verdict"],
          rows)  # fmt: skip
    return 0


def model_label(cfg: FindingsConfig, dose: float) -> str:
    """The label of the twin pretrained at a dose."""
    return f"{cfg.dose} {dose:g}"


def control_label(cfg: FindingsConfig, dose: float) -> str:
    """The label of the random-init model a dose's twin is compared with: one for a pretraining knob, one per
    dose (its own world and tokenizer) for a world knob."""
    return f"{RANDOM_INIT} at {cfg.dose} {dose:g}" if cfg.dose in WORLD_KNOBS else RANDOM_INIT


def build_models(cfg: FindingsConfig) -> dict[str, Path]:
    """The random-init model(s) and one pretrained twin per dose, built where missing: label -> folder."""
    from xlray.world.assets import write_assets
    from xlray.world.pretrain import pretrained_model

    models = {}
    for dose in cfg.doses:
        assets = cfg.assets_at(dose)
        if cfg.assets is None:
            write_assets(assets, [cfg.family], cfg.world_at(dose), cfg.hidden, cfg.layers, cfg.vocab)
        random_init = models[control_label(cfg, dose)] = assets / "models" / cfg.family
        folder = assets / "models" / f"{cfg.family}-{cfg.dose}-{dose:g}"
        recipe = cfg.recipe_at(dose)
        models[model_label(cfg, dose)] = pretrained_model(cfg.family, assets / "world", random_init, recipe, folder)
    return models


@dataclass(frozen=True)
class Measured:
    """What every model scored on the held-out probes of its world (the same meanings in every world)."""

    advantage: dict[str, np.ndarray]  # label -> translation advantage [meanings, layers]
    related_gap: dict[str, np.ndarray]  # label -> cos(translation) - cos(unrelated word) [meanings, layers]
    cosine_gap: dict[str, list[float]]  # label -> mean cos(translation) - cos(control) per layer
    concept_units: dict[str, np.ndarray]  # label -> concept x cluster tables [concepts, layers, clusters]
    concept_curves: dict[str, dict[str, list[float]]]  # label -> metric -> per layer
    gold: list[str]  # the gold concepts: the rows of the tables
    probes: dict[str, list[Probe]]  # label -> the held-out probes it was scored on


def measure(
    cfg: FindingsConfig, models: dict[str, Path], world_cfg: WorldConfig | None = None, skip: Iterable[str] = ()
) -> Measured:
    """Each model's translation advantage and concept clusters on the same held-out probes of one world
    (``cfg.world`` by default), leaving out the links of the concepts in ``skip`` and of the world's anchors."""
    from xlray.models import load_model

    world = World(world_cfg or cfg.world)
    items = probes(world, cfg.heldout, cfg.seed, skip={*skip, *world.anchors})
    advantage, related, gaps, units, curves, gold = {}, {}, {}, {}, {}, []
    for label, folder in models.items():
        lm = load_model(ModelConfig(name=str(folder)))
        scores = probe_scores(lm, items)
        advantage[label], related[label], gaps[label] = scores.advantage, scores.related_gap, scores.cosine_gap
        points = concept_points(lm, world, items)
        gold = points.gold
        k = cfg.concept_clusters or len(gold)
        layers = [
            layer_scores(points, i, world.cfg.source, k, cfg.calign, cfg.colap) for i in range(len(points.layers))
        ]
        units[label] = by_concept([table for table, _ in layers])
        curves[label] = {metric: [scores[metric] for _, scores in layers] for metric in CONCEPT_METRICS}
    return Measured(advantage, related, gaps, units, curves, gold, dict.fromkeys(models, items))


def measure_doses(cfg: FindingsConfig, models: dict[str, Path]) -> Measured:
    """:func:`measure` on each dose's world, every world probed on the links none of them shares as an anchor, so
    that the units of the paired tests (meanings, gold concepts) are the same in every world."""
    if cfg.dose not in WORLD_KNOBS:
        return measure(cfg, models)
    skip = {c for dose in cfg.doses for c in World(cfg.world_at(dose)).anchors}
    parts = [
        measure(cfg, {label: models[label] for label in (control_label(cfg, d), model_label(cfg, d))},
                cfg.world_at(d), skip)
        for d in cfg.doses
    ]  # fmt: skip
    shapes = {(tuple(p.gold), *(a.shape for a in p.advantage.values())) for p in parts}
    if len(shapes) != 1:
        raise AssertionError(f"the doses' worlds were probed on different meanings or gold concepts: {shapes}")
    return Measured(*({k: v for p in parts for k, v in getattr(p, name).items()}
                      for name in ("advantage", "related_gap", "cosine_gap", "concept_units", "concept_curves")),
                    parts[0].gold, {k: v for p in parts for k, v in p.probes.items()})  # fmt: skip


def dictionary_finding(cfg: FindingsConfig, world_dir: Path, out: Path) -> tuple[Finding, dict[str, Any]]:
    """The eflomal dictionary against the gold per language, and the finding that it beats the rotated control
    (a paired bootstrap over the gold entries of every language)."""
    import tempfile

    from xlray.findings.dictionary import language_scores

    found, control, scores = [], [], {}
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        for language in cfg.world.languages:
            real, rotated = language_scores(world_dir, cfg.world.source, language, Path(scratch),
                                            cfg.dictionary_sentences, n_samplers=3)  # fmt: skip
            found.append(real.hits)
            control.append(rotated.hits)
            scores[language] = {"precision": real.precision, "recall": real.recall, "entries": len(real.hits),
                                "control_precision": rotated.precision, "control_recall": rotated.recall}  # fmt: skip
    finding = paired_finding("dictionary-planted", "eflomal on the parallel text recovers the gold dictionary"
                             " (top-translation recall, vs the same text with its pairs rotated apart)", "planted",
                             np.concatenate(found), np.concatenate(control), cfg.smallest_recall,
                             n_resamples=cfg.resamples, seed=cfg.seed, detail=scores)  # fmt: skip
    return finding, scores


def planted(cfg: FindingsConfig, measured: Measured, label: str, name: str, control: str = RANDOM_INIT) -> Finding:
    """The model ``label`` against its random-init twin ``control`` on the translation advantage, averaged over
    layers."""
    adv = measured.advantage
    return paired_finding(name, f"pretraining ({label}) plants translation-specific word alignment (vs its"
                          " random-init twin)", "planted", adv[label].mean(axis=1), adv[control].mean(axis=1),
                          cfg.smallest_effect, n_resamples=cfg.resamples, seed=cfg.seed)  # fmt: skip


def related_gap(cfg: FindingsConfig, measured: Measured, label: str, control: str = RANDOM_INIT) -> Finding:
    """The model ``label`` against its random-init twin ``control`` on the related - unrelated cosine gap."""
    gap = {name: g.mean(axis=1) for name, g in measured.related_gap.items()}
    return paired_finding("related-gap-planted", f"translations sit closer than unrelated words, more so after"
                          f" pretraining ({label} vs random init; cosine gap, Efimov et al.'s related vs unrelated)",
                          "planted", gap[label], gap[control], cfg.smallest_gap, n_resamples=cfg.resamples,
                          seed=cfg.seed)  # fmt: skip


def concepts_planted(
    cfg: FindingsConfig, measured: Measured, label: str, against: str = RANDOM_INIT, name: str = "concepts-planted"
) -> Finding:
    """The model ``label`` against ``against`` on the concept clusters' ARI against the gold concepts."""
    units = measured.concept_units
    return paired_finding(name, f"translations share concept clusters ({label} vs {against}; ARI against the gold"
                          " concepts)", "planted", units[label], units[against], cfg.smallest_ari,
                          n_resamples=cfg.resamples, seed=cfg.seed, statistic=mean_concept_ari)  # fmt: skip


def findings(cfg: FindingsConfig, measured: Measured) -> list[Finding]:
    """The findings of the module docstring, in order."""
    common = {"n_resamples": cfg.resamples, "seed": cfg.seed}
    adv, units, gold = measured.advantage, measured.concept_units, measured.gold
    first, last = cfg.doses[0], cfg.doses[-1]
    zero, top = model_label(cfg, first), model_label(cfg, last)
    out = [
        planted(cfg, measured, model_label(cfg, dose), f"planted-at-{dose:g}", control_label(cfg, dose))
        for dose in cfg.doses
    ]

    def planted_effect(dose: float) -> np.ndarray:  # twin - its random-init control, per meaning
        return adv[model_label(cfg, dose)].mean(axis=1) - adv[control_label(cfg, dose)].mean(axis=1)

    out.append(paired_finding("dose-response", f"more planted alignment ({cfg.dose} {last:g} vs 0), more"
                              " alignment (each twin over its random-init control)", "planted",
                              planted_effect(last), planted_effect(first), cfg.smallest_effect,
                              **common))  # fmt: skip
    out.append(paired_finding("depth", f"alignment rises with depth (last layer vs embeddings, {top})",
                              "Mousi et al. 2024 (word-level advantage, not CALIGN)", adv[top][:, -1],
                              adv[top][:, 0], cfg.smallest_effect, **common))  # fmt: skip
    out += [
        related_gap(cfg, measured, top, control_label(cfg, last)),
        concepts_planted(cfg, measured, top, control_label(cfg, last)),
        concepts_planted(cfg, measured, top, zero, "concepts-dose-response"),
    ]
    out.append(paired_finding("classes-learned", f"monolingual pretraining ({zero}) clusters words by their gold"
                              " class (vs random init; ARI against the gold classes)", "planted",
                              by_class(units[zero], gold), by_class(units[control_label(cfg, first)], gold),
                              cfg.smallest_ari, statistic=mean_class_ari, **common))  # fmt: skip
    return out


def document(
    title: str,
    found: list[Finding],
    measured: Measured,
    dictionary: dict[str, Any] | None,
    transfer: dict[str, Any] | None = None,
) -> dict:
    """findings.json's document (findings.md is rendered from it)."""
    return {
        "title": title,
        "measure": MEASURE,
        "findings": [f.as_dict() for f in found],
        "curves": {label: a.mean(axis=0).tolist() for label, a in measured.advantage.items()},
        "cosine_gap": measured.cosine_gap,
        "related_gap": {label: g.mean(axis=0).tolist() for label, g in measured.related_gap.items()},
        "concepts": measured.concept_curves,
        "dictionary": dictionary,
        "transfer": transfer,
    }


def write_report(doc: dict[str, Any], out: Path) -> list[str]:
    """findings.json, findings.md and the two plots under ``out``; returns their names."""
    write_json(out / "findings.json", doc)
    with atomic_text(out / "findings.md") as fh:
        fh.write(markdown(doc))
    atomic(out / "advantage.png", lambda p: plot_curves(doc, p))
    atomic(out / "concepts.png", lambda p: plot_concepts(doc, p))
    written = ["findings.json", "findings.md", "advantage.png", "concepts.png"]
    if doc.get("transfer"):
        atomic(out / "transfer.png", lambda p: plot_transfer(doc, p))
        written.append("transfer.png")
    return written


def run_findings(cfg: FindingsConfig) -> dict[str, Any]:
    """Run (or skip, if finished with this config) the findings check; returns the manifest."""
    out = Path(cfg.output_dir)
    done = finished(out / MANIFEST, cfg, "findings check")
    if done is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    name = run_name(STAGE, cfg.family, cfg.dose)
    with open_run(cfg.tracking, name, out, tags=run_tags(STAGE, model=cfg.family, dose=cfg.dose)) as sink:
        sink.log_params({"config": cfg.model_dump(mode="json")})
        models = build_models(cfg)
        say(f"[{STAGE}] {len(models)} models ready; probing {cfg.heldout} held-out meanings")
        measured = measure_doses(cfg, models)
        top = cfg.doses[-1]
        dictionary, dictionary_scores = dictionary_finding(cfg, cfg.assets_at(top) / "world", out)
        found = [*findings(cfg, measured), dictionary]
        transfer = None
        if cfg.transfer.enabled:
            from xlray.findings.transfer import transfer_findings

            label = model_label(cfg, cfg.transfer_dose())
            twin = models[label]
            say(
                f"[{STAGE}] adjusting {twin.name}, then base / adjusted / continual NLI over seeds {cfg.transfer.seeds}"
            )
            transfer_found, transfer = transfer_findings(cfg, twin, measured.probes[label], out / "transfer", sink)
            found += transfer_found
        title = f"Findings: tiny {cfg.family} {cfg.layers} x {cfg.hidden}, {cfg.dose} at {cfg.doses}"
        doc = document(title, found, measured, dictionary_scores, transfer)
        for f in found:
            sink.log_metrics({f"{f.name}.{k}": getattr(f, k) for k in ("effect", "ci_low", "ci_high", "p_value")})
        sink.set_tags({f"verdict.{f.name}": f.verdict for f in found})
        for label, curve in doc["curves"].items():
            for layer, value in enumerate(curve):
                sink.log_metrics({f"advantage.{label}": value}, step=layer)
        for label, metrics in measured.concept_curves.items():
            for metric, curve in metrics.items():
                for layer, value in enumerate(curve):
                    sink.log_metrics({f"{metric}.{label}": value}, step=layer)
        for artifact in write_report(doc, out):
            sink.log_artifact(out / artifact)
        manifest = {
            "stage": STAGE,
            "config": result_config(cfg),
            "run_name": name,
            "mlflow_run_id": sink.run_id,
            "models": {label: str(folder) for label, folder in models.items()},
            "findings": doc["findings"],
        }
        write_json(out / MANIFEST, manifest)
        sink.log_artifact(out / MANIFEST)
    say(f"[{STAGE}] {len(found)} findings; {out / 'findings.md'}")
    return manifest
