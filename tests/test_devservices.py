"""The benchmark tools check of scripts/devservices.py, with real executables."""

import stat

from scripts import devservices


def _executable(directory, name: str, exit_status: int) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {exit_status}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_tool_present_but_unable_to_run_counts_as_missing(tmp_path, monkeypatch):
    _executable(tmp_path, "wrk", 1)
    _executable(tmp_path, "redis-benchmark", 0)
    _executable(tmp_path, "pgbench", 1)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert devservices.missing_tools() == ["pgbench"]


def test_a_tool_absent_from_the_path_is_missing(tmp_path, monkeypatch):
    _executable(tmp_path, "wrk", 0)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert devservices.missing_tools() == ["redis-benchmark", "pgbench"]
