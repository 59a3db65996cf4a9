"""The rules every stage (extract, concepts, adjust, evaluate, sweep) follows the same way.

- **Finished output.** A stage's output is complete if and only if its manifest exists; the manifest is written
  last. Re-running a stage on a finished output with the same result-deciding config returns that manifest and
  says so; with a different config it is refused. Where and how a stage runs and logs (``tracking``, ``ray``)
  does not decide its result, so changing those never makes a finished output "different". Evaluate decides
  seed by seed: a longer seed list or new comparisons run only what is missing, and a finished seed with another
  result-deciding config is refused.
- **MLflow runs.** A stage's run is named ``<stage>-<what it ran on>`` and tagged ``xlray.stage = <stage>``. Every
  stage a sweep trial runs (extract, concepts, adjust, evaluate) takes ``into=``: an open run (the trial's) to log
  into instead of a run of its own.
- **Console.** A stage's lines start with ``[<stage>]``.
- **Configs.** Every stage config's ``stage`` field defaults to its own name (a YAML file still names it, which is
  how ``xlray validate`` and ``xlray config show`` know the class).
- **JSON.** Manifests and results go through ``xlray.outputs.write_json`` (NaN and infinities become null).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from xlray.errors import XlrayError
from xlray.outputs import read_json

NOT_RESULT_FIELDS = frozenset({"tracking", "ray", "storage"})  # where a stage runs, logs, stores: not its result


def result_config(cfg: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The fields of a stage config (or its JSON dump) that decide the stage's result."""
    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else dict(cfg)
    return {k: v for k, v in data.items() if k not in NOT_RESULT_FIELDS}


def finished(path: str | Path, cfg: BaseModel, what: str, refuse: bool = True) -> dict[str, Any] | None:
    """The manifest at ``path`` if a run of this stage with the same result-deciding config finished there (and
    says so), else None. A finished run with another config is an error naming the manifest, or with
    ``refuse=False`` None: for a stage that decides itself what of it to reuse (evaluate, seed by seed)."""
    from xlray.console import say
    from xlray.storage import name, parent

    manifest = read_json(path)  # a local path or a URI (never made a Path: that folds s3:// into s3:/)
    if manifest is None:
        return None
    if result_config(manifest.get("config", {})) != result_config(cfg):
        if not refuse:
            return None
        raise XlrayError(
            f"{path}: output_dir holds a finished {what} with a different config; "
            "choose another output_dir or delete that one"
        )
    say(f"[{getattr(cfg, 'stage', what)}] {parent(path)} is already complete ({name(path)}); nothing to do")
    return manifest


def run_name(stage: str, *what: str) -> str:
    """An MLflow run's name: ``<stage>-<what>`` (``extract-bert``, ``adjust-bert-xl+xc``)."""
    return "-".join([stage, *what])


def run_tags(stage: str, **more: str) -> dict[str, str]:
    """An MLflow run's tags: ``xlray.stage`` and the stage's own."""
    return {"xlray.stage": stage, **more}
