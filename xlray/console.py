"""A quiet console: xlray's own lines, a progress bar per long stage and result tables; libraries' logs to a file.

By default Ray's, Ray Data's, Tune's, MLflow's and the other libraries' log records go to ``<output_dir>/xlray.log``
(through their loggers' real settings, not by filtering output), worker output stays in Ray's session logs, and
Ray's own progress bars are off. ``xlray -v`` (``XLRAY_VERBOSE=1``) shows all of it on the console as well.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG_FILE = "xlray.log"
# Loggers that bring console handlers of their own; their records go to the log file instead.
LIBRARY_LOGGERS = ("ray", "ray.data", "ray.tune", "ray.train", "mlflow", "alembic", "transformers", "optuna")
RAY_DATA_LOGGING = """\
version: 1
disable_existing_loggers: false
formatters:
  ray: {{format: "%(asctime)s\\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"}}
handlers:
  file: {{class: ray.data._internal.logging.SessionFileHandler, formatter: ray, filename: ray-data.log}}
  xlray: {{class: logging.FileHandler, formatter: ray, filename: "{log}"}}
loggers:
  ray.data: {{level: INFO, handlers: [file, xlray], propagate: false}}
"""

_log_file: Path | None = None


def verbose() -> bool:
    """Whether libraries' logs and Ray's progress bars are shown on the console (``xlray -v``)."""
    return os.environ.get("XLRAY_VERBOSE", "") not in ("", "0")


def log_to(folder: str | Path) -> Path:
    """Send libraries' log records to ``folder/xlray.log`` (the first call in a process decides the file; for a
    folder in object storage, its local scratch folder)."""
    from xlray.storage import scratch_dir

    global _log_file
    if _log_file is not None:
        return _log_file
    folder = scratch_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _log_file = folder.resolve() / LOG_FILE
    handler = logging.FileHandler(_log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)  # Python warnings become log records of "py.warnings"
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    if not verbose():
        import ray  # noqa: F401 - importing ray adds its console handler, which is replaced below

        for name in LIBRARY_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = [handler]
            logger.propagate = False
        os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(ray_data_logging(folder)))
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return _log_file


def ray_data_logging(folder: Path) -> Path:
    """Ray Data's logging config (read when ``ray.data`` is imported): its session file and ours, no console."""
    path = folder / ".ray-data-logging.yaml"
    path.write_text(RAY_DATA_LOGGING.format(log=str(_log_file).replace('"', '\\"')), encoding="utf-8")
    return path


def quiet_ray_data() -> None:
    """Ray Data's progress bars and execution banners are off unless verbose (its real DataContext settings)."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = verbose()
    ctx.print_on_execution_start = verbose()
    ctx.enable_auto_log_stats = False


def say(message: str) -> None:
    """One line of xlray's own output."""
    print(message, flush=True)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A progress bar for one long stage (rich); yields ``advance(n=1)``. Off a terminal only its last state prints."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stdout)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        _bars.append(lambda n=1: bar.advance(task, n))
        try:
            yield _bars[-1]
        finally:
            _bars.pop()


_bars: list[Any] = []  # the open progress bars' advance functions, innermost last


def advance(n: int = 1) -> None:
    """Advance the innermost open progress bar (for callbacks that cannot hold one, e.g. pickled Tune callbacks)."""
    if _bars:
        _bars[-1](n)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a results table."""
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for name in columns:
        out.add_column(name)
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120).print(out)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
