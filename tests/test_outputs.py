"""Atomic outputs: a failed write leaves the old result and no temporary files; finished runs are recognised."""

import pytest

from xlray.errors import XlrayError
from xlray.outputs import atomic_dir, finished_manifest, write_json


def test_failed_folder_write_keeps_the_old_folder_and_no_temporaries(tmp_path):
    final = tmp_path / "ckpt"
    atomic_dir(final, lambda tmp: (tmp / "a.txt").write_text("old"))

    def broken(tmp):
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_dir(final, broken)
    assert (final / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_finished_manifest_matches_config_or_refuses(tmp_path):
    path = tmp_path / "manifest.json"
    assert finished_manifest(path, {"a": 1}, "run") is None
    write_json(path, {"config": {"a": 1}, "n": 3})
    assert finished_manifest(path, {"a": 1}, "run")["n"] == 3
    with pytest.raises(XlrayError, match=rf"{path}: output_dir holds a finished run with a different config"):
        finished_manifest(path, {"a": 2}, "run")
