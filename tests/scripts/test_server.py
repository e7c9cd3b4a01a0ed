"""README command 1, for real: prepare the embedded default, then gunicorn with two workers."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(tmp_path / "instance"),
           "DATABASE_URL": database_url, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    prepared = subprocess.run([sys.executable, "scripts/prepare.py"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(gunicorn), "--config", "python:web.gunicorn_conf",
                                "web:create_app()"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "gunicorn.log").read_text()) from None
                time.sleep(0.5)
        yield base, prepared.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_server_serves_the_demo_with_printed_logins(server: tuple[str, str]) -> None:
    base, printed = server
    # The demo logins are printed, and they work.
    assert "Demo logins" in printed
    worker_email = re.search(r"social_worker\s+(\S+)", printed)
    password = re.search(r"password for every staff account: (\S+)\)", printed)
    code = re.search(r"^\s+\S.*\s([A-Z0-9]{4}-[A-Z0-9]{4})$", printed, re.MULTILINE)
    assert worker_email and password and code

    with urllib.request.urlopen(base + "/healthz") as response:
        health = json.load(response)
    assert health["status"] == "ok" and health["residents_indexed"] == 40
    assert health["needs_indexed"] == 15

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def post(path: str, fields: dict[str, str]) -> str:
        token = CSRF.search(browser.open(base + path).read().decode())
        assert token
        body = urllib.parse.urlencode({**fields, "csrf_token": token.group(1)}).encode()
        return str(browser.open(base + path, data=body).read().decode())

    page = post("/connexion", {"email": worker_email.group(1), "password": password.group(1)})
    assert "Personnes accompagnées" in page
    desk = browser.open(base + "/accompagnement/propositions").read().decode()
    assert desk.count('class="card proposal"') >= 10 and "rejoint" in desk

    resident = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    token = CSRF.search(resident.open(base + "/code").read().decode())
    assert token
    page = resident.open(base + "/code", data=urllib.parse.urlencode(
        {"code": code.group(1), "csrf_token": token.group(1)}).encode()).read().decode()
    assert "Mes propositions" in page and "Oui, ça m'intéresse" in page
