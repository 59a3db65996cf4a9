"""`xlray demo`: the main job on one machine, no network: synthetic world, tiny models, local Ray, sqlite MLflow.

The stages run through exactly the code a cluster run uses; local mode is only ``ray.address: null`` and a
tracking URI in the output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from xlray.configs import ModelConfig, RayConfig, Strict, TrackingConfig, load_config
from xlray.families import EncoderFamilyName
from xlray.sweep.config import SweepConfig
from xlray.tracking import tracking_uri
from xlray.world.build import WorldConfig
from xlray.world.pretrain import PRETRAINABLE, PretrainConfig

Step = Literal["extract", "concepts", "sentence-alignment", "sweep", "findings"]
DEMO_LLM = "llama"  # the tiny decoder-only model whose sentence alignment (MEXA) the demo scores (random init)
DEMO_PROBES = 200  # held-out meanings the demo's findings probe (xlray findings: 500)


class DemoConfig(Strict):
    """What the demo runs; the defaults finish in a few minutes on a 2-core laptop."""

    stage: Literal["demo"] = "demo"
    output_dir: str = "xlray-runs/demo"
    world: WorldConfig = Field(default_factory=lambda: WorldConfig(parallel_sentences=1000, task_train=450))
    family: EncoderFamilyName = Field("bert", description="the tiny encoder every step but sentence-alignment runs")
    pretrain: PretrainConfig | None = Field(
        default_factory=lambda: PretrainConfig(tlm_share=1.0),
        description="pretrain the encoder on the world first, every row a translation pair (TLM: planted alignment);"
        " null: run on the random-init model",
    )
    steps: list[Step] = Field(
        default_factory=lambda: ["extract", "concepts", "sentence-alignment", "sweep", "findings"]
    )
    seeds: list[int] = Field(default_factory=lambda: [0])
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig(experiment="xlray-demo"))

    @model_validator(mode="after")
    def _pretrainable(self) -> DemoConfig:
        if self.pretrain is not None and self.family not in PRETRAINABLE:
            raise ValueError(f"pretrain: {self.family!r} cannot be pretrained here (choose one of"
                             f" {list(PRETRAINABLE)}, or pretrain: null)")  # fmt: skip
        if self.pretrain is None and "findings" in self.steps:
            raise ValueError("steps: the findings step compares the pretrained model with its random-init twin;"
                             " it needs pretrain")  # fmt: skip
        return self

    def model_dir(self, out: Path) -> Path:
        """The encoder the steps run: the pretrained twin unless ``pretrain`` is null."""
        return out / "assets" / "models" / (f"{self.family}-pretrained" if self.pretrain else self.family)


def extract_config(cfg: DemoConfig, out: Path, model: ModelConfig, tracking: TrackingConfig):
    from xlray.extract.config import ExtractConfig

    parallel = out / "assets" / "world" / "parallel"
    inputs = [
        {"format": "parallel", "source": str(parallel / f"{lang}-en.{lang}"), "target": str(parallel / f"{lang}-en.en"),
         "source_language": lang, "target_language": "en"}
        for lang in cfg.world.languages
    ]  # fmt: skip
    return ExtractConfig(model=model, inputs=inputs, languages=["en", *cfg.world.languages], ray=cfg.ray,
                         output_dir=str(out / "extract"), tracking=tracking)  # fmt: skip


def concepts_configs(cfg: DemoConfig, out: Path, tracking: TrackingConfig):
    """One concepts run per language paired with the source language, on the demo's extraction."""
    from xlray.concepts.config import ConceptsConfig

    parallel = out / "assets" / "world" / "parallel"
    src = cfg.world.source
    return [
        ConceptsConfig.model_validate({
            "activations": str(out / "extract"), "source": lang, "target": src,
            "dictionary": {"kind": "eflomal", "source": str(parallel / f"{lang}-{src}.{lang}"),
                           "target": str(parallel / f"{lang}-{src}.{src}")},
            "points": {"pca_dim": 16}, "clustering": {"method": "fast-hdbscan", "min_cluster_size": 5},
            "model_label": cfg.family, "output_dir": str(out / "concepts" / f"{lang}-{src}"),
            "explorer": {"gold_words": str(out / "assets" / "world" / "gold" / "words.parquet")},
            "tracking": tracking.model_dump(),
        })
        for lang in cfg.world.languages
    ]  # fmt: skip


def sentence_alignment_configs(cfg: DemoConfig, out: Path, tracking: TrackingConfig):
    """Sentence vectors of the tiny LLM (MEXA's pooling) for the parallel corpora, then MEXA per layer and pair with
    the source language as the pivot. Line k of both sides of a corpus gets the same sentence id."""
    from xlray.extract.config import ExtractConfig
    from xlray.sentence_alignment.config import SentenceAlignmentConfig

    model = ModelConfig(name=str(out / "assets" / "models" / DEMO_LLM))
    words = extract_config(cfg, out, model, tracking).model_dump()
    folder = out / "sentence-alignment"
    extract = ExtractConfig.model_validate(
        {**words, "granularity": "sentence", "sentence_pooling": "mexa", "output_dir": str(folder / "extract")}
    )
    alignment = SentenceAlignmentConfig(activations=extract.output_dir, output_dir=str(folder / "scores"),
                                        pivot=cfg.world.source, tracking=tracking)  # fmt: skip
    return extract, alignment


def demo_sweep(cfg: DemoConfig, out: Path) -> SweepConfig:
    """The demo's sweep (sweeps/demo.yaml is this, written out for the default demo): the tiny model adjusted on
    each synthetic language with and without the English regulariser, then base / adjusted / continual NLI."""
    assets, world = out / "assets", out / "assets" / "world"
    xnli = world / "tasks" / "xnli"
    return SweepConfig.model_validate({
        "stage": "sweep",
        "name": "demo",
        "output_dir": str(out / "sweep"),
        "world": {"output": str(assets), "families": [cfg.family], "world": cfg.world.model_dump(),
                  "pretrain": cfg.pretrain.model_dump() if cfg.pretrain else None},
        "models": {cfg.family: {"name": str(cfg.model_dir(out))}},
        "languages": cfg.world.languages[:2],
        "space": {"adjust.loss.reg_lambda": {"grid": [0.0, 1.0]}},
        "adjust": {
            "corpus": {"format": "lines", "source": str(world / "parallel" / "{lang}-en.{lang}"),
                       "english": str(world / "parallel" / "{lang}-en.en")},
            "pairs": {"max_sent": cfg.world.parallel_sentences, "heldout_sent": 100},
            "optim": {"lr": 5e-4},  # the papers' 5e-5 is for pretrained mBERT; the random tiny model needs more
        },
        "evaluate": {
            "task": {"kind": "nli", "train": str(xnli / f"multinli.train.{cfg.world.source}.tsv"),
                     "test": str(xnli / "xnli.test.tsv"), "dev": str(xnli / "xnli.dev.tsv"),
                     "lr": 1e-3, "epochs": 3, "batch_size": 16},
            "seeds": cfg.seeds,
            "significance": {"n_resamples": 1000},
        },
        "search": {"algorithm": "grid", "metric": "zero_shot.continual.targets_mean.dev_accuracy", "mode": "max"},
        "resources": {"cpu": 1},
        "ray": cfg.ray.model_dump(),
        "tracking": cfg.tracking.model_dump(),
    })  # fmt: skip


def run_demo(config_path: str | None = None, output: str | None = None) -> int:
    """Run the demo's steps in order, then a results table and where to look."""
    from xlray.console import log_to, say
    from xlray.runtime import start_ray
    from xlray.world.assets import write_assets

    cfg = load_config(config_path, DemoConfig) if config_path else DemoConfig()
    out = Path(output or cfg.output_dir).resolve()
    log_file = log_to(out)
    families = list(dict.fromkeys([cfg.family, *([DEMO_LLM] if "sentence-alignment" in cfg.steps else [])]))
    say(f"[demo] writing the synthetic world and tiny models ({', '.join(families)}) under {out / 'assets'}")
    write_assets(out / "assets", families=families, world=cfg.world)
    if cfg.pretrain is not None:
        write_assets(out / "assets", families=[cfg.family], world=cfg.world, pretrain=cfg.pretrain)
    tracking = cfg.tracking.model_copy(update={"uri": tracking_uri(cfg.tracking, out)})
    model = ModelConfig(name=str(cfg.model_dir(out)))
    say(f"[demo] {start_ray(cfg.ray) or 'Ray: this process is connected already'}")
    results: list[list] = []
    if "extract" in cfg.steps:
        from xlray.extract.run import run_extract

        counts = run_extract(extract_config(cfg, out, model, tracking))["counts"]
        results.append(["extract", "all", "word occurrences kept", counts.get("encoder_kept")])
    if "concepts" in cfg.steps:
        from xlray.concepts.run import run_concepts

        for concepts in concepts_configs(cfg, out, tracking):
            manifest = run_concepts(concepts)
            top = str(manifest["layers"][-1])
            for metric in ("calign." + f"{concepts.source}_{concepts.target}", "colap"):
                results.append([f"concepts, layer {top}", f"{concepts.source}-{concepts.target}", metric,
                                manifest["results"][top].get(metric)])  # fmt: skip
    if "sentence-alignment" in cfg.steps:
        from xlray.extract.run import run_extract
        from xlray.sentence_alignment.run import run_sentence_alignment

        extract, alignment = sentence_alignment_configs(cfg, out, tracking)
        run_extract(extract)
        for pair, pooled in run_sentence_alignment(alignment)["aggregates"].items():
            results.append([f"sentence alignment, {DEMO_LLM}", pair, "mexa_mean", pooled["mexa_mean"]])  # over layers
    if "sweep" in cfg.steps:
        from xlray.sweep.run import run_sweep

        sweep = demo_sweep(cfg, out).model_copy(update={"tracking": tracking})
        best = run_sweep(sweep, resume=(out / "sweep" / "sweep.json").is_file())["best"]
        if best:
            results.append(["sweep, best trial", best["trial_id"], sweep.search.metric,
                            best["result"][sweep.search.metric]])  # fmt: skip
    found = demo_findings(cfg, out) if "findings" in cfg.steps else []
    where_to_look(cfg, out, tracking, results, log_file, found)
    return 0


def demo_findings(cfg: DemoConfig, out: Path) -> list:
    """The pretrained encoder against its random-init twin on held-out probes of the world: the translation
    advantage, the related - unrelated gap and the concept clusters (``xlray findings`` does this and more, at
    several doses); findings.json / findings.md under ``out/findings``."""
    from xlray.findings.config import FindingsConfig
    from xlray.findings.run import RANDOM_INIT, concepts_planted, document, measure, planted, related_gap, write_report

    pretrained = f"{cfg.family} pretrained"
    findings_cfg = FindingsConfig(world=cfg.world, family=cfg.family, pretrain=cfg.pretrain, heldout=DEMO_PROBES,
                                  resamples=2000, output_dir=str(out / "findings"))  # fmt: skip
    models = {RANDOM_INIT: out / "assets" / "models" / cfg.family, pretrained: cfg.model_dir(out)}
    measured = measure(findings_cfg, models)
    found = [planted(findings_cfg, measured, pretrained, "planted"), related_gap(findings_cfg, measured, pretrained),
             concepts_planted(findings_cfg, measured, pretrained)]  # fmt: skip
    folder = Path(findings_cfg.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_report(
        document(f"Demo findings: tiny {cfg.family}, pretrained vs random init", found, measured, None), folder
    )
    return found


def where_to_look(
    cfg: DemoConfig, out: Path, tracking: TrackingConfig, results: list[list], log_file: Path, found: list
) -> None:
    from xlray.console import say, table
    from xlray.tracking import runs_url

    model = "the pretrained tiny model" if cfg.pretrain else "a tiny random-init model: they show the pipeline works"
    table(f"demo results ({model})", ["step", "on", "metric", "value"], results)
    if found:
        table("findings: pretrained vs random init",
              ["finding", "effect", "95% CI", "verdict"],
              [[f.name, f.effect, f"[{f.ci_low:+.3f}, {f.ci_high:+.3f}]", f.verdict] for f in found])  # fmt: skip
    say(f"[demo] outputs: {out} (concept explorers: {out / 'concepts'}/*/explorer.html)")
    say(f"[demo] logs of Ray, Tune and MLflow: {log_file}")
    if cfg.tracking.enabled:
        say(f"[demo] MLflow: mlflow ui --backend-store-uri {tracking.uri} --port 5000")
        say(f"[demo]   then open {runs_url(tracking.uri, tracking.experiment)}")
