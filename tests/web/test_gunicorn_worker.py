"""web.gunicorn_worker.FairThreadWorker under a real gunicorn, on a tiny WSGI application that
answers with its process id (slowly when asked): a worker whose threads are all busy leaves new
connections to the others; an idle keep-alive connection does not make it refuse them."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402 - free_port, worker_pids

APP = '''
import os, pathlib, time

def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":  # says it started (in the file named), then takes 1 s
        pathlib.Path(environ["QUERY_STRING"]).write_text("started")
        time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''


def _serve(tmp_path: Path, workers: int, threads: int) -> Iterator[str]:
    (tmp_path / "pid_app.py").write_text(APP)
    port = bench.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
         "--worker-class", "web.gunicorn_worker.FairThreadWorker", "--workers", str(workers),
         "--threads", str(threads), "--keep-alive", "75", "pid_app:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(bench.worker_pids(process.pid)) < workers or not _answers(base):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _answers(base: str) -> bool:
    try:
        return _pid(base, "/") > 0
    except OSError:
        return False


def _pid(base: str, path: str) -> int:
    """The answering process, on a new connection (urllib closes it after the answer)."""
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return int(response.read())


@pytest.fixture
def two_single_threaded(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, workers=2, threads=1)


@pytest.fixture
def one_single_threaded(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, workers=1, threads=1)


def test_a_busy_worker_leaves_the_next_connection_to_the_free_one(two_single_threaded: str,
                                                                  tmp_path: Path) -> None:
    base = two_single_threaded
    with ThreadPoolExecutor(1) as pool:
        for turn in range(5):  # gthread gives the second one to the busy worker about half the time
            mark = tmp_path / f"started-{turn}"
            slow = pool.submit(_pid, base, f"/slow?{mark}")
            deadline = time.monotonic() + 30
            while not mark.exists():  # the slow request is in its worker's only thread
                assert time.monotonic() < deadline and not slow.done()
                time.sleep(0.02)
            quick = _pid(base, "/")
            assert quick != slow.result()


def test_an_idle_keep_alive_connection_does_not_stop_a_worker_taking_new_ones(
        one_single_threaded: str) -> None:
    base = one_single_threaded
    host, port = base.removeprefix("http://").split(":")
    kept = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        kept.request("GET", "/")
        first = kept.getresponse()
        assert first.status == 200 and first.getheader("Connection", "").lower() != "close"
        first.read()  # the connection now idles in the worker's poller, open for 75 s
        assert _pid(base, "/") > 0  # served now (urllib waits 30 s), not when the kept one times out
        kept.request("GET", "/")  # and the kept connection still works
        assert kept.getresponse().status == 200
    finally:
        kept.close()
