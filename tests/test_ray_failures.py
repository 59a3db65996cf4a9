"""Ray's failure types read as one line (no Ray processes): a constructor that failed, a user error inside Ray."""

import re

from ray.exceptions import ActorDiedError, RayTaskError

from xlray.errors import RunFailure, XlrayError
from xlray.ray_failures import ray_failure, user_error


def task_error(exc: Exception, traceback: str) -> RayTaskError:
    return RayTaskError("ExtractChunks.__init__", traceback, exc)


def test_an_actor_that_cannot_start_names_its_error_in_one_line():
    missing = "No module named 'transformers'"
    cause = task_error(
        ModuleNotFoundError(missing), f"Traceback (most recent call last):\n  ...\nModuleNotFoundError: {missing}"
    )
    failure = ray_failure(ActorDiedError(cause), "extract")
    assert isinstance(failure, RunFailure) and "\n" not in str(failure)
    said = r"extract: a worker \(pid \d+\) failed: its actor could not start: ModuleNotFoundError: No module named"
    assert re.match(said, str(failure)) and re.search(r"worker log.*worker-\*-\d+\.err$", str(failure))
    assert "ActorDiedError" in failure.detail and missing in failure.detail  # for --debug


def test_a_user_error_raised_inside_ray_keeps_its_own_message():
    wrapped = task_error(
        XlrayError("a.txt:3: empty line"), "Traceback ...\nxlray.errors.XlrayError: a.txt:3: empty line\n"
    )
    error = user_error(wrapped.as_instanceof_cause())
    assert isinstance(error, XlrayError) and str(error) == "a.txt:3: empty line"
    assert str(ray_failure(wrapped, "extract")) == "a.txt:3: empty line"


def test_anything_else_is_its_last_line():
    failure = ray_failure(RuntimeError("first\nsecond"), "sweep")
    assert isinstance(failure, RunFailure) and str(failure) == "sweep: failed: RuntimeError: second"


def test_one_line_of_an_exception():
    from xlray.errors import one_line
    from xlray.ray_failures import last_line

    assert one_line(OSError("")) == "OSError"  # no message: its type
    assert one_line(ValueError("\n  first\nsecond")) == "first"
    assert one_line(ValueError("x" * 400)) == "x" * 300
    assert last_line(RuntimeError("Ray's context\n\n  the cause  \n")) == "RuntimeError: the cause"
