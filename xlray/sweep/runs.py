"""The MLflow runs of a sweep's trials: children of the sweep's parent run, tagged ``xlray.role = trial`` and
``xlray.trial_id`` (see ``xlray.sweep.trial.trial_run``).

One query for all who look them up: a restarted trial finding its run again, the status callback closing the run
of a killed trial, and the report reading every trial.
"""

from __future__ import annotations

from typing import Any

from xlray.tracking import client_for, experiment_id

MAX_TRIALS = 10_000  # MLflow returns 1,000 runs unless asked for more


def trial_runs(client: Any, experiment: str, parent_run_id: str | None, trial_id: str | None = None) -> list[Any]:
    """The trial runs under the sweep's parent run, or with ``trial_id`` those of one trial (one, once it ran)."""
    where = [f"tags.`mlflow.parentRunId` = '{parent_run_id}'", "tags.`xlray.role` = 'trial'"]
    if trial_id is not None:
        where.append(f"tags.`xlray.trial_id` = '{trial_id}'")
    return client.search_runs(
        [experiment_id(client, experiment)], filter_string=" and ".join(where), max_results=MAX_TRIALS
    )


def find_trial_run(uri: str, experiment: str, parent_run_id: str | None, trial_id: str) -> str | None:
    """The id of the run an earlier attempt of this trial started, if any (a resumed sweep reopens it)."""
    runs = trial_runs(client_for(uri), experiment, parent_run_id, trial_id)
    return runs[0].info.run_id if runs else None
