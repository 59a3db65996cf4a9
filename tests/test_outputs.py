"""Atomic outputs: a failed write leaves the old result and no temporary files; finished runs are recognised."""

import json
import math

import pytest

from xlray.outputs import atomic_dir, atomic_path, atomic_text, read_json, write_json


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


def test_failed_file_write_keeps_the_old_file_and_no_temporaries(tmp_path):
    path = tmp_path / "shard.parquet"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".shard.parquet.") and tmp.suffix == ".tmp"
        assert tmp not in tmp_path.glob("*.parquet")  # a leftover of a killed run is never read as an output
        tmp.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.parquet"]


def test_atomic_text_writes_utf8_with_lf_only_on_success(tmp_path):
    path = tmp_path / "sub" / "xnli.tsv"
    with atomic_text(path) as fh:
        fh.write("ça\tva\n")
    assert path.read_bytes() == "ça\tva\n".encode()
    with pytest.raises(KeyboardInterrupt), atomic_text(path) as fh:
        fh.write("half")
        raise KeyboardInterrupt
    assert path.read_bytes() == "ça\tva\n".encode() and len(list(path.parent.iterdir())) == 1


def test_json_writes_nan_and_infinity_as_null(tmp_path):
    path = write_json(tmp_path / "summary.json", {"en": {"acc_std": math.nan, "n": [1, math.inf, (2.5, -math.inf)]}})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert json.loads(path.read_text()) == read_json(path) == {"en": {"acc_std": None, "n": [1, None, [2.5, None]]}}


def test_uri_targets_are_written_through_a_pyarrow_filesystem_whole_or_not_at_all(tmp_path):
    """file:// goes through pyarrow's filesystem layer, as s3:// and gs:// do."""
    base = (tmp_path / "store").as_uri()
    assert write_json(f"{base}/run/manifest.json", {"x": float("nan")}) == f"{base}/run/manifest.json"
    assert read_json(f"{base}/run/manifest.json") == {"x": None} and read_json(f"{base}/run/nothing.json") is None
    with pytest.raises(RuntimeError), atomic_path(f"{base}/run/half.json") as tmp:
        tmp.write_text("{")
        raise RuntimeError("killed")
    atomic_dir(f"{base}/run/checkpoint", lambda d: (d / "weights.bin").write_bytes(b"w"))
    assert sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file()) == [
        "run/checkpoint/weights.bin",
        "run/manifest.json",
    ]
