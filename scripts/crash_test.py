#!/usr/bin/env python3
"""Kill a gunicorn worker (SIGKILL) during concurrent writes, restart, and check nothing was lost.

    python scripts/crash_test.py                      # 4 writers, 20 s, a throwaway SQLite database
    python scripts/crash_test.py --writers 8 --seconds 60 --database-url postgresql://…/relais_crash

On 127.0.0.1 only, bounded in time. It migrates an empty database (a throwaway folder; give an
empty PostgreSQL database with --database-url), starts gunicorn (2 gthread workers), posts needs
through the API from several threads, kills one worker with `kill -9` halfway, keeps writing
while the master replaces it, stops and restarts the service, then checks that:

- every write the API acknowledged (201) is in the database, with its statements;
- every acknowledged need is served by the restarted service;
- the index a process builds incrementally (saved files + the IndexEvent log) equals the index
  rebuilt from the database, and the service indexes every need.

Exit status 0 when all hold; the figures are printed either way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tally:
    acknowledged: dict[int, str] = field(default_factory=dict)  # need id -> title
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def request(base: str, method: str, path: str, token: str, body: Any = None,
            timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("gunicorn did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.5)


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with log.open("ab") as out:
        return subprocess.Popen([str(gunicorn), "--config", "python:web.gunicorn_conf", "web:create_app()"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def prepare(env: dict[str, str]) -> str:
    """Migrate, and create an association member with a write token (returns its secret)."""
    done = subprocess.run([sys.executable, "scripts/prepare.py", "--no-demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    from models import Database, Organisation, Role, User
    from web.api.tokens import create_token

    with Database(env["DATABASE_URL"]) as database, database.session() as session:
        organisation = Organisation(name="Association du test de panne", kind="association")
        session.add(organisation)
        session.flush()
        member = User(email="crash@example.org", display_name="Crash", role=Role.ASSOCIATION_MEMBER,
                      organisation_id=organisation.id)
        session.add(member)
        session.commit()
        return create_token(session, member, "crash test", True, None).secret


@contextmanager
def demo_server(folder: Path, **settings: str) -> Iterator[tuple[str, Path]]:
    """gunicorn on 127.0.0.1 over a new SQLite database with the demo data: (base URL, instance)."""
    instance = folder / "instance"
    port = free_port()
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(instance), "PORT": str(port),
           "RELAIS_BIND": f"127.0.0.1:{port}", "DATABASE_URL": f"sqlite:///{instance / 'relais.db'}",
           **settings}
    done = subprocess.run([sys.executable, "scripts/prepare.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    log = folder / "gunicorn.log"
    server = start(env, log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        yield f"http://127.0.0.1:{port}", instance
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def demo_token(instance: Path, email: str, write: bool = False) -> str:
    """A token for a demo account, created as scripts/create_token.py does."""
    from models import Database, User
    from web.api.tokens import create_token

    with Database(f"sqlite:///{instance / 'relais.db'}") as database, database.session() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        return create_token(session, user, "load", write, None).secret


def writer(base: str, token: str, number: int, stop: threading.Event, tally: Tally) -> None:
    sent = 0
    while not stop.is_set():
        sent += 1
        title = f"Panne {number}-{sent}"
        body = {"title": title, "description": f"Cuisiner pour le repas {number} {sent} du quartier."}
        try:
            status, payload = request(base, "POST", "/api/v1/needs", token, body)
        except OSError:  # the worker died under this request: not acknowledged
            status, payload = 0, None
        with tally.lock:
            if status == 201 and payload:
                tally.acknowledged[int(payload["id"])] = title
            else:
                tally.failed += 1


def verify(env: dict[str, str], base: str, token: str, tally: Tally) -> list[str]:
    from matcher.requirements import check_requirements
    from models import Database, Need, NeedStatement
    from web.config import Config
    from web.services.matching import MatchingService

    problems: list[str] = []
    config = Config(instance_dir=Path(env["RELAIS_INSTANCE_DIR"]), database_url=env["DATABASE_URL"])
    check_requirements(config.embedder)
    with Database(config.database_url) as database, database.session() as session:
        stored = {n.id: n.title for n in session.exec(select(Need)).all()}
        with_statements = set(session.exec(select(NeedStatement.need_id).distinct()).all())
        for need_id, title in tally.acknowledged.items():
            if stored.get(need_id) != title:
                problems.append(f"acknowledged need {need_id} ({title}) is missing")
            elif need_id not in with_statements:
                problems.append(f"acknowledged need {need_id} has no statements")
        incremental = MatchingService()
        incremental.configure_from(config)
        state = incremental.load_or_rebuild(session)
        incremental.sync(session)
        rebuilt = MatchingService()
        rebuilt.configure_from(config)
        rebuilt.rebuild(session)
        for name in ("residents", "needs"):
            mine, theirs = incremental.collections[name].pairs(), rebuilt.collections[name].pairs()
            if not all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True)):
                problems.append(f"{name}: the incremental index ({state}) differs from a rebuild")
        indexed = len(rebuilt.collections["needs"])
        count = int(session.exec(select(func.count()).select_from(Need).where(
            col(Need.id).in_(with_statements))).one())
        if indexed != count:
            problems.append(f"{indexed} needs indexed, {count} in the database")
    with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
        health = json.load(response)
    if health["needs_indexed"] != len(with_statements):
        problems.append(f"the service indexes {health['needs_indexed']} needs, "
                        f"the database has {len(with_statements)}")
    for need_id in tally.acknowledged:
        status, _ = request(base, "GET", f"/api/v1/needs/{need_id}", token)
        if status != 200:
            problems.append(f"need {need_id}: {status} from the restarted service")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="writing time (the kill is halfway)")
    parser.add_argument("--database-url", default="", help="an empty database (default: throwaway SQLite)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="relais-crash-") as folder:
        instance = Path(folder) / "instance"
        port = free_port()
        env = {**os.environ, "RELAIS_INSTANCE_DIR": str(instance), "PORT": str(port),
               "RELAIS_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
               "DATABASE_URL": args.database_url or f"sqlite:///{instance / 'relais.db'}",
               "RELAIS_API_RATE_LIMIT": "100000 per minute"}
        token = prepare(env)
        log = Path(folder) / "gunicorn.log"
        base = f"http://127.0.0.1:{port}"
        tally, stop = Tally(), threading.Event()
        server = start(env, log)
        try:
            wait_healthy(base, server, log)
            threads = [threading.Thread(target=writer, args=(base, token, i, stop, tally), daemon=True)
                       for i in range(args.writers)]
            for thread in threads:
                thread.start()
            time.sleep(args.seconds / 2)
            victim = workers_of(server.pid)[0]
            with tally.lock:
                before = len(tally.acknowledged)
            os.kill(victim, signal.SIGKILL)
            print(f"killed worker {victim} (kill -9) after {before} acknowledged writes", flush=True)
            time.sleep(args.seconds / 2)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            if victim in workers_of(server.pid):
                raise SystemExit("the killed worker is still there")
        finally:
            stop.set()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        if len(tally.acknowledged) <= before:
            print("no write was acknowledged after the kill: the master did not recover", file=sys.stderr)
            return 1
        server = start(env, log)
        try:
            wait_healthy(base, server, log)
            problems = verify(env, base, token, tally)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"{len(tally.acknowledged)} writes acknowledged ({before} before the kill), "
          f"{tally.failed} refused or cut by the kill; after restart: "
          f"{'all present, index equal to a rebuild' if not problems else 'PROBLEMS'}")
    for problem in problems:
        print("  " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
