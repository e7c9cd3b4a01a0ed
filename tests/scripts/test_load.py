"""scripts/load.py and scripts/fuzz_api.py, with tiny bounds: real gunicorn, real locust and
schemathesis over HTTP on 127.0.0.1, zero failures and zero server errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=1200)


def test_a_tiny_load_run_has_no_failure() -> None:
    done = run("scripts/load.py", "--users", "5", "--spawn-rate", "5", "--seconds", "8",
               "--staff-users", "1", "--resident-users", "1")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    figures = re.search(r"(\d+) requests .*, (\d+) failures, p50 (\d+) ms, p95 (\d+) ms, "
                        r"(\d+) server errors", done.stdout)
    assert figures, done.stdout
    assert int(figures.group(1)) > 10 and figures.group(2) == "0" and figures.group(5) == "0"


def test_a_tiny_fuzz_run_has_no_server_error() -> None:
    done = run("scripts/fuzz_api.py", "--examples", "3")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    found = re.search(r"(\d+) requests; statuses: (.*); server errors: (\d+)", done.stdout)
    assert found and found.group(3) == "0", done.stdout
    codes = dict(pair.split(": ") for pair in found.group(2).split(", "))
    assert "200" in codes and ("422" in codes or "400" in codes)  # valid and invalid inputs were sent
    assert not any(code.startswith("5") for code in codes)
