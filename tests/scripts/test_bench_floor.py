"""scripts/bench_floor.py for real on a small history: its floor is the policy's, and it never
writes into a database that already holds matches (no timings checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from matcher.policy import calibrate
from models import Database, Match, MatchStatus
from web.services.proposals import REVIEWED

ROOT = Path(__file__).resolve().parents[2]


def run(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scripts/bench_floor.py", "--matches", "300", "40",
                           "--reads", "2", "--database-url", url, "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_bench_floor_grows_a_history_and_reads_the_policys_floor(tmp_path: Path,
                                                                 template_database: str) -> None:
    from tests.conftest import fresh_database

    with fresh_database(tmp_path, template_database) as url:
        done = run(url)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert [row["matches"] for row in report["rows"]] == [40, 300]  # ascending
        assert all(row["read_ms"] >= 0 and row["kept_ms"] >= 0 for row in report["rows"])
        with Database(url) as database, database.session() as session:
            history = session.exec(select(Match.status, Match.score)).all()
        assert len(history) == 300
        approved = [score for status, score in history if status in REVIEWED]
        rejected = [score for status, score in history if status == MatchStatus.REJECTED]
        assert report["rows"][-1]["floor"] == pytest.approx(calibrate(approved, rejected, default=0.2))

        again = run(url)
        assert again.returncode != 0 and "already holds matches" in again.stderr
        with Database(url) as database, database.session() as session:
            assert len(session.exec(select(Match.id)).all()) == 300
