"""scripts/bench.py for real on a tiny population: the JSON contract and sane values (no timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402

RESIDENTS = 60


def run(*args: str, database_url: str = "") -> tuple[str, dict[str, Any]]:
    command = [sys.executable, "scripts/bench.py", *args, "--json"]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return done.stdout, json.loads(lines[-1])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, template_database: str) -> tuple[str, dict[str, Any]]:
    """One tiny run for the module (it starts gunicorn and loads the model: minutes on a busy machine)."""
    from tests.conftest import fresh_database

    with fresh_database(tmp_path_factory.mktemp("bench"), template_database) as url:
        return run("--residents", str(RESIDENTS), "--needs", "8", "--queries", "4", "--ann-queries", "12",
                   "--clients", "2", "--http-requests", "6", "--budget", "600", database_url=url)


def test_the_last_line_is_the_json_contract(report: tuple[str, dict[str, Any]]) -> None:
    printed, figures = report
    for key in bench.CONTRACT:
        assert figures[key] is not None, (key, figures)
    assert not [key for key in figures if key.endswith("_error")], figures
    assert figures["residents"] == RESIDENTS
    assert "configuration:" in printed and figures["embedder"] and figures["load_average_start"]


def test_the_figures_are_sane(report: tuple[str, dict[str, Any]]) -> None:
    _, f = report
    assert f["ingest_residents"] == RESIDENTS and f["ingest_statements"] >= 3 * RESIDENTS
    assert f["ingest_statements_per_s"] > 0 and f["ingest_cpu_s"] > 0 and f["index_build_s"] >= 0
    assert f["index_vectors"] <= f["ingest_statements"]  # negated statements are never indexed
    assert 0 < f["match_p50_ms"] <= f["match_p95_ms"] and f["match_queries"] == 4
    assert f["match_proposals_per_need"] > 0  # need -> residents made proposals
    assert f["http_requests"] == 6 and f["http_errors"] == 0 and f["http_workers"] == 2
    assert 0 < f["http_p50_ms"] <= f["http_p95_ms"]
    assert len(f["rss_mb_workers"]) == 2 and 50 < f["rss_mb_per_worker"] < 4000
    assert all(0 < pss <= rss for pss, rss in zip(f["pss_mb_workers"], f["rss_mb_workers"], strict=True))
    # Under 30,000 vectors the index is exact: it must agree with the numpy scan.
    assert f["index_kind"] == "flat" and f["ann_recall_at_10"] == 1.0
    assert f["exact_scan_ratio"] > 0 and math.isfinite(f["exact_scan_ratio"])


def test_index_only_mode() -> None:
    _, f = run("--index-only", "--residents", "3000", "--ann-queries", "20")
    assert f["index_only"] and f["vectors"] == 3000
    assert 0.5 <= f["ann_recall_at_10"] <= 1.0
    assert 0 < f["vector_p50_ms"] <= f["vector_p95_ms"] and f["index_bytes"] > 3000 * 512 * 2  # HNSW: float16
    assert f["exact_scan_ratio"] > 0


def test_percentiles() -> None:
    assert bench.percentiles([0.001 * i for i in range(1, 101)]) == (50.5, 95.05)
