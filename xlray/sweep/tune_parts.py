"""The Ray Tune pieces a sweep config chooses: search algorithm, scheduler, and the MLflow status callback."""

from __future__ import annotations

from typing import Any

from ray import tune

from xlray.sweep.config import SweepConfig


def search_algorithm(cfg: SweepConfig) -> Any:
    """grid and random: Tune's variant generator (seeded); optuna: TPE over the whole space, seeded."""
    search = cfg.search
    if search.algorithm == "optuna":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(metric=search.metric, mode=search.mode, sampler=TPESampler(seed=search.seed))
    from ray.tune.search import BasicVariantGenerator

    # The generator limits concurrency itself (Tune ignores TuneConfig.max_concurrent_trials for it).
    return BasicVariantGenerator(random_state=search.seed, max_concurrent=search.max_concurrent_trials or 0)


def scheduler(cfg: SweepConfig) -> Any:
    """ASHA on an intermediate result (one per pipeline step), or FIFO."""
    s = cfg.scheduler
    if s.kind == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        metric=s.metric,
        mode=s.mode,
        time_attr="training_iteration",
        max_t=pipeline_steps(cfg),
        grace_period=min(s.grace_period, pipeline_steps(cfg)),
        reduction_factor=s.reduction_factor,
    )


def pipeline_steps(cfg: SweepConfig) -> int:
    """Results a trial reports: one per step (adjust, each condition, concepts, sentence alignment)."""
    if cfg.evaluate is None:
        evaluate = 0
    else:
        evaluate = len(cfg.conditions) if cfg.adjust is not None else 1
    optional = int(cfg.concepts is not None) + int(cfg.sentence_alignment is not None)
    return int(cfg.adjust is not None) + evaluate + optional


class TrialRunStatus(tune.Callback):
    """Ends a trial's MLflow run if Tune ended the trial without the trial closing it (its worker was killed);
    an errored one is marked FAILED until a resume finishes it. A trial the scheduler stops closes its own run
    (FINISHED, tagged ``xlray.stopped_early``)."""

    def __init__(self, uri: str | None, experiment: str, parent_run_id: str | None):
        self.uri, self.experiment, self.parent_run_id = uri, experiment, parent_run_id

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.close(trial.trial_id, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.close(trial.trial_id, "FAILED")

    def close(self, trial_id: str, status: str) -> None:
        if self.uri is None:
            return
        from mlflow.tracking import MlflowClient

        from xlray.sweep.runs import trial_runs

        client = MlflowClient(tracking_uri=self.uri)
        for run in trial_runs(client, self.experiment, self.parent_run_id, trial_id):
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status=status)


class TrialProgress(tune.Callback):
    """Advances the sweep's progress bar as trials end (through xlray.console: Tune pickles its callbacks with the
    experiment, and a restored one must still find the bar)."""

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from xlray.console import advance

        advance()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from xlray.console import advance

        advance()
