"""`xlray sweep CONFIG [--resume]`: a Ray Tune experiment over models x languages x hyperparameters, as a recipe.

load config -> check everything before any trial (space, metrics, tracking server, resources) -> synthetic world
(if asked) -> MLflow parent run -> Tuner (or Tuner.restore with --resume) -> failed trials reported ->
report (table and plots, logged to the parent run) -> manifest (last).

Output folder (a path every node shares, or an ``s3://`` / ``gs://`` URI; ``xlray.storage``):
    sweep.json          the started sweep: config, parent run id, tracking URI, Tune experiment path
    tune/<name>/        Tune's experiment state (unless storage_path says elsewhere): Tune's ``storage_path`` is
                        ``output_dir/tune``, so Tune reads and writes it through the same pyarrow filesystem
    trials/<trial id>/  each trial's stage outputs, events.jsonl and result.json (see xlray.sweep.trial)
    report/             comparison table and plots (see xlray.sweep.report)
    manifest.json       written last: the sweep is complete iff it exists

With an output in object storage, this machine keeps only its log file and, unless tracking.uri names a server,
the default sqlite MLflow store (both in the output's scratch folder, ``xlray.storage.scratch_dir``): trials on
other nodes can reach that store only if the scratch folder is shared, so give a multi-node sweep a tracking server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xlray.configs import load_config
from xlray.console import log_to, say
from xlray.errors import RunFailure, XlrayError
from xlray.outputs import read_json, write_json
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.storage import absolute, check_output, join, redact, use_storage
from xlray.sweep.checks import preflight
from xlray.sweep.config import SweepConfig
from xlray.sweep.space import param_space
from xlray.sweep.trial import TrialSetup, run_trial
from xlray.tracking import client_for, flatten, is_server, open_run, tracking_uri
from xlray.world.assets import prepare_world

STATE = "sweep.json"
MANIFEST = "manifest.json"


def main(config_path: str | Path, resume: bool = False, output: str | None = None) -> int:
    """CLI entry: run (or with ``resume``, finish) the sweep described by a YAML config, optionally elsewhere."""
    cfg = load_config(config_path, SweepConfig)
    run_sweep(cfg.model_copy(update={"output_dir": output}) if output else cfg, resume)
    return 0


def run_sweep(cfg: SweepConfig, resume: bool = False) -> dict[str, Any]:
    """Run the sweep; returns its manifest. Raises XlrayError before any trial starts if the input is bad."""
    from xlray.runtime import start_ray

    out = absolute(cfg.output_dir)
    check_storage(cfg)  # before anything is written
    log_to(out)  # libraries' logs to out/xlray.log (unless an enclosing stage chose a file)
    done = finished(join(out, MANIFEST), cfg, "sweep")
    if done is not None:
        return done
    state = started_state(cfg, out, resume)

    # 1. Everything that can be checked before a trial starts: what `xlray validate` checks (space, concepts step,
    #    metrics, the tracking server), then a local tracking store, then, once Ray runs, the trial's resources.
    preflight(cfg)
    uri = tracking_uri(cfg.tracking, out) if cfg.tracking.enabled else None
    if uri and not is_server(uri):
        client_for(uri)  # a local store (preflight reached a server): fails now, naming the URI, if unusable
    if cfg.world is not None:  # every trial builds it too: each node needs its own copy
        prepare_world(cfg.world.output, cfg.world.families, cfg.world.world, cfg.world.pretrain)
    connected = start_ray(cfg.ray)
    if connected:
        say(f"[sweep] {connected}")
    check_resources(cfg)

    # 2. The parent run (reopened on resume), then the Tune experiment.
    tracking = cfg.tracking.model_copy(update={"uri": uri})
    tags = run_tags("sweep", **{"xlray.sweep": cfg.name, "xlray.role": "sweep"})
    parent_id = state["parent_run_id"] if state else None
    with open_run(tracking, run_name("sweep", cfg.name), out, tags=tags, run_id=parent_id) as parent:
        if parent_id is None:
            parent.log_params(flatten(cfg.model_dump(mode="json")))
        storage = tune_storage(cfg, out)
        state = {"config": result_config(cfg), "parent_run_id": parent.run_id, "tracking_uri": uri,
                 "experiment": join(storage, cfg.name)}  # fmt: skip
        write_json(join(out, STATE), state)
        setup = TrialSetup(cfg.model_dump_json(), out, uri, parent.run_id)
        results = fit(cfg, setup, storage, state["experiment"], resume)
        trials = trial_results(cfg, results, state["experiment"])
        from xlray.sweep.report import write_report

        report = write_report(cfg, join(out, "report"), uri, parent.run_id)
        for path in report:
            parent.log_artifact(path, "report")
        best = best_trial(cfg, trials)
        if best:
            parent.log_metrics({f"best.{cfg.search.metric}": best["result"][cfg.search.metric]})
            parent.set_tags({"xlray.best_trial": best["trial_id"]})
        manifest = {"config": result_config(cfg), "trials": trials, "best": best, "parent_run_id": parent.run_id,
                    "report": [f"report/{p.name}" for p in report]}  # fmt: skip
        write_json(join(out, MANIFEST), manifest)
    summary(cfg, trials, best, out, uri)
    return manifest


def check_storage(cfg: SweepConfig) -> None:
    """The sweep's storage settings made this process's, then its output URIs probed (``check_output``): a bad
    output_dir or storage_path fails in one line before anything is written."""
    use_storage(cfg.storage)
    check_output(cfg.output_dir, "output_dir")
    if cfg.storage_path:
        check_output(cfg.storage_path, "storage_path")


def tune_storage(cfg: SweepConfig, out: str) -> str:
    """Tune's ``storage_path``: ``storage_path``, else ``output_dir/tune`` (a local folder or the same object
    store, reached by Tune through pyarrow with the same environment: credentials and ``AWS_ENDPOINT_URL``)."""
    if cfg.storage_path:
        return absolute(cfg.storage_path)
    return join(out, "tune")


def started_state(cfg: SweepConfig, out: str, resume: bool) -> dict[str, Any] | None:
    """The saved state of a started sweep: required with --resume, refused without it."""
    state, shown = read_json(join(out, STATE)), redact(out)
    if state is None and resume:
        raise XlrayError(f"--resume: {shown} holds no started sweep ({STATE} is missing); run it without --resume")
    if state is not None and not resume:
        raise XlrayError(f"{shown}: holds an unfinished sweep; add --resume to finish it, or choose another output_dir")
    if state is not None and state["config"] != result_config(cfg):
        raise XlrayError(f"--resume: the config differs from the one {shown} was started with; resume that one")
    return state


def check_resources(cfg: SweepConfig) -> None:
    """A trial's CPUs and GPUs must fit on one node of the running cluster (unless it autoscales)."""
    import ray

    need = {"CPU": cfg.resources.cpu, "GPU": cfg.resources.gpu}
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if cfg.resources.autoscaling or any(all(n.get(k, 0) >= v for k, v in need.items()) for n in nodes):
        return
    have = ", ".join(f"{n.get('CPU', 0):g} CPU + {n.get('GPU', 0):g} GPU" for n in nodes) or "no nodes"
    raise XlrayError(
        f"resources: a trial asks for {need['CPU']:g} CPU + {need['GPU']:g} GPU, but no node offers that "
        f"(nodes: {have}); lower resources.cpu/gpu, or set resources.autoscaling: true on a cluster that starts "
        "such nodes on demand"
    )


def fit(cfg: SweepConfig, setup: TrialSetup, storage: str, experiment: str, resume: bool) -> Any:
    """Run the Tune experiment, or restore and finish it (errored and unfinished trials run again)."""
    from ray import tune

    from xlray.console import progress, verbose
    from xlray.sweep.space import count_trials
    from xlray.sweep.tune_parts import TrialProgress, TrialRunStatus

    # Trials run in the job's working directory (relative paths in the config mean the same there), not in
    # Tune's per-trial folder; Tune hands this variable on to the trial processes.
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, setup=setup), {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}
    )
    space = param_space(cfg)
    if not verbose():  # Tune's new output engine prints its banner even at verbose=0; the legacy one does not
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with progress(f"sweep {cfg.name}: trials", count_trials(cfg)):
        callbacks = [TrialRunStatus(setup.tracking_uri, cfg.tracking.experiment, setup.parent_run_id), TrialProgress()]
        if resume and tune.Tuner.can_restore(experiment):
            say(f"[sweep] resuming {experiment}")
            # resume_errored keeps an errored trial's id (restart_errored would give it a new one and a new MLflow
            # run); the restored Tuner brings back its own run config and callbacks.
            tuner = tune.Tuner.restore(
                experiment, trainable, resume_unfinished=True, resume_errored=True, param_space=space
            )
            return tuner.fit()
        return new_tuner(cfg, trainable, space, storage, callbacks, verbose()).fit()


def new_tuner(cfg: SweepConfig, trainable: Any, space: dict, storage: str, callbacks: list, loud: bool) -> Any:
    """The Tuner of a new sweep; Tune's result tables only when ``loud`` (xlray -v)."""
    from ray import tune

    from xlray.sweep.tune_parts import scheduler, search_algorithm

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # keep Tune's saved state close to what ran
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            num_samples=cfg.search.num_samples,
            search_alg=search_algorithm(cfg),
            scheduler=scheduler(cfg),
            max_concurrent_trials=cfg.search.max_concurrent_trials if cfg.search.algorithm == "optuna" else None,
            reuse_actors=True,  # a finished trial's worker (torch and transformers imported) runs the next one
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=storage,
            callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=2 if loud else 0,
        ),
    )


def trial_results(cfg: SweepConfig, results: Any, experiment: str) -> dict[str, dict[str, Any]]:
    """``{trial id: {"config", "result"}}``; failed trials are one line naming each and its cause, and how to
    resume: an XlrayError if each failed on bad input, else a RunFailure (a worker died, a bug)."""
    from xlray.ray_failures import ray_failure

    failed = [r for r in results if r.error is not None]
    if failed:
        labels = [f"trial {r.metrics.get('trial_id', Path(r.path).name)}" for r in failed]
        causes = [ray_failure(r.error, label) for r, label in zip(failed, labels, strict=True)]
        said = [
            f"{label}: {c}" if isinstance(c, XlrayError) else str(c) for label, c in zip(labels, causes, strict=True)
        ]
        message = (
            f"{len(failed)} of {len(results)} trials failed: " + "; ".join(said)
            + f"; trial logs under {redact(experiment)}; fix the cause, then: xlray sweep <config> --resume "
            "(finished trials are kept)"
        )  # fmt: skip
        if all(isinstance(c, XlrayError) for c in causes):
            raise XlrayError(message)
        raise RunFailure(message, "\n".join(c.detail or "" for c in causes if isinstance(c, RunFailure)))
    return {
        r.metrics["trial_id"]: {"config": r.config, "result": {k: v for k, v in r.metrics.items() if is_result(k)}}
        for r in results
    }


def is_result(key: str) -> bool:
    """A trial's own result (zero_shot.*, align.*, concepts.*, trial_seconds), not Tune's bookkeeping."""
    return "." in key or key == "trial_seconds"


def best_trial(cfg: SweepConfig, trials: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    scored = [(t["result"][cfg.search.metric], tid) for tid, t in trials.items() if cfg.search.metric in t["result"]]
    if not scored:
        return None
    value, tid = (max if cfg.search.mode == "max" else min)(scored)
    return {"trial_id": tid, **trials[tid]}


def summary(cfg: SweepConfig, trials: dict, best: dict | None, out: str, uri: str | None) -> None:
    """A table of the trials (best first), then where the outputs are."""
    from xlray.console import table
    from xlray.sweep.space import trial_label

    metric = cfg.search.metric
    rows = sorted(
        ([trial_label(t["config"]), t["result"].get(metric), tid] for tid, t in trials.items()),
        key=lambda row: (row[1] is None, -(row[1] or 0) if cfg.search.mode == "max" else (row[1] or 0)),
    )
    say(f"[sweep] {cfg.name}: {len(trials)} trials finished; outputs in {redact(out)}")
    table(f"sweep {cfg.name}: trials, best first", ["trial", metric, "trial id"], rows)
    if best is None:
        say(f"[sweep] no trial reported {metric}")
    say(f"[sweep] report: {redact(join(out, 'report'))}")
    if uri:
        say(f"[sweep] MLflow: parent run sweep-{cfg.name} in experiment {cfg.tracking.experiment} at {uri}")
