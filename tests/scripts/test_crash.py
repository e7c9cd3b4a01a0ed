"""scripts/crash_test.py, small: a gunicorn worker killed with kill -9 during concurrent writes
loses no acknowledged write, and the index matches the database after a restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_killed_worker_loses_no_acknowledged_write(database_url: str) -> None:
    args = [sys.executable, "scripts/crash_test.py", "--writers", "3", "--seconds", "8"]
    if not database_url.startswith("sqlite"):
        args += ["--database-url", database_url]  # the fixture's empty PostgreSQL database
    done = subprocess.run(args, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    killed = re.search(r"killed worker \d+ \(kill -9\) after (\d+) acknowledged", done.stdout)
    total = re.search(r"(\d+) writes acknowledged", done.stdout)
    assert killed and total and int(total.group(1)) > int(killed.group(1)) > 0, done.stdout
    assert "all present, index equal to a rebuild" in done.stdout
