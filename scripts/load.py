#!/usr/bin/env python3
"""A bounded load run with locust against gunicorn on 127.0.0.1, over a throwaway demo database.

    python scripts/load.py                        # 50 users for 60 s
    python scripts/load.py --users 6 --seconds 10

It prepares a new SQLite database with the demo neighbourhood, starts gunicorn (2 gthread workers,
as `scripts/server`), and runs locust headless (a subprocess: locust patches the standard library
with gevent) with this file as its locustfile. Traffic mixes what people do: social workers and
association members logged in once (their pages), residents logged in by code (their page and
skills), partner tools on the API with a read token each (lists, reads, "match this text"), and
visitors on the public pages. Logins stay within the login rate limit (20 per minute per address
and form): a fixed number of users log in, once each. Prints requests, failures, p50 and p95 and
fails when any request failed.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ["nadia.benali@relais.demo", "julien.moreau@relais.demo"]
MEMBERS = ["sophie.lambert@relais.demo", "yannick.legoff@relais.demo"]
ADMIN = "claire.martin@relais.demo"
TEXTS = ["Je cuisine pour quarante personnes et je parle arabe.", "Je répare les vélos et les mobylettes.",
         "Je fais de la couture, des ourlets et des retouches.", "J'aide les enfants pour les devoirs.",
         "Je conduis le minibus le samedi matin."]


def summary(stats_csv: Path) -> dict[str, float]:
    """The aggregated row of locust's CSV: requests, failures, p50, p95 (ms), requests per second."""
    with stats_csv.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    return {"requests": int(total["Request Count"]), "failures": int(total["Failure Count"]),
            "p50": float(total["50%"]), "p95": float(total["95%"]), "rps": float(total["Requests/s"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--staff-users", type=int, default=8, help="users that log in with a password")
    parser.add_argument("--resident-users", type=int, default=10, help="users that log in with a code")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "scripts"))
    from crash_test import demo_server, demo_token

    with tempfile.TemporaryDirectory(prefix="relais-load-") as folder, \
            demo_server(Path(folder)) as (base, instance):
        codes = [line.split("\t")[2] for line in
                 (instance / "demo_logins.txt").read_text(encoding="utf-8").splitlines()
                 if line.startswith("resident\t")]
        # One read token per partner user: the API's rate limit counts per token, as it should.
        tokens = [demo_token(instance, (*WORKERS, ADMIN)[i % 3]) for i in range(args.users)]
        env = {**os.environ, "RELAIS_LOAD_TOKENS": ",".join(tokens),
               "RELAIS_LOAD_CODES": ",".join(codes), "RELAIS_LOAD_STAFF": str(args.staff_users),
               "RELAIS_LOAD_RESIDENTS": str(args.resident_users)}
        prefix = Path(folder) / "locust"
        locust = Path(sys.executable).with_name("locust")
        done = subprocess.run(
            [str(locust), "-f", __file__, "--headless", "--host", base, "-u", str(args.users),
             "-r", str(args.spawn_rate), "-t", f"{args.seconds}s", "--csv", str(prefix),
             "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.seconds + 300)
        figures = summary(Path(f"{prefix}_stats.csv"))
        failures = Path(f"{prefix}_failures.csv").read_text()
        served = (Path(folder) / "gunicorn.log").read_text()
        server_errors = served.count('" 50')
        # Workers booted, recycled (max_requests), timed out or killed: what a reset may come from.
        lifecycle = [line for line in served.splitlines()
                     if re.search(r"Booting worker|Worker exiting|WORKER TIMEOUT|was sent SIG", line)]
    print(f"{args.users} users, {args.seconds} s: {figures['requests']} requests "
          f"({figures['rps']:.1f}/s), {figures['failures']} failures, p50 {figures['p50']:.0f} ms, "
          f"p95 {figures['p95']:.0f} ms, {server_errors} server errors in the access log")
    if figures["failures"] or server_errors or figures["requests"] == 0:
        print(failures + done.stderr[-3000:] + "\ngunicorn:\n" + "\n".join(lifecycle), file=sys.stderr)
        return 1
    return 0


if __name__ != "__main__":  # loaded by locust as its locustfile
    from locust import HttpUser, between, task

    class Visitor(HttpUser):
        """Someone who opens the public pages."""

        weight = 1
        wait_time = between(1, 3)

        @task
        def pages(self) -> None:
            for path in ("/", "/connexion", "/code", "/healthz"):
                self.client.get(path)

    class Partner(HttpUser):
        """A partner tool with a read-only token."""

        weight = 3
        wait_time = between(1, 3)

        number = 0

        def on_start(self) -> None:
            Partner.number += 1
            tokens = os.environ["RELAIS_LOAD_TOKENS"].split(",")
            self.client.headers["Authorization"] = f"Bearer {tokens[Partner.number % len(tokens)]}"

        @task(3)
        def lists(self) -> None:
            self.client.get("/api/v1/residents?limit=20", name="/api/v1/residents")
            self.client.get("/api/v1/proposals?limit=20", name="/api/v1/proposals")
            self.client.get("/api/v1/needs?limit=20", name="/api/v1/needs")

        @task(2)
        def reads(self) -> None:
            self.client.get("/api/v1/me")
            page = self.client.get("/api/v1/residents?limit=5", name="/api/v1/residents").json()
            for item in page["items"][:2]:
                self.client.get(f"/api/v1/residents/{item['id']}/declaration",
                                name="/api/v1/residents/{id}/declaration")

        @task(1)
        def search(self) -> None:
            self.client.post("/api/v1/search/needs", json={"text": random.choice(TEXTS), "limit": 5})

    def csrf(response: object) -> str:
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', getattr(response, "text", ""))
        assert found, "no CSRF token"
        return found.group(1)

    class Staff(HttpUser):
        """A social worker or an association member, logged in once."""

        fixed_count = int(os.environ.get("RELAIS_LOAD_STAFF", "8"))
        wait_time = between(1, 3)
        number = 0

        def on_start(self) -> None:
            Staff.number += 1
            accounts = WORKERS + MEMBERS
            self.email = accounts[Staff.number % len(accounts)]
            token = csrf(self.client.get("/connexion"))
            with self.client.post("/connexion", data={"email": self.email, "password": "relais-demo",
                                                      "csrf_token": token}, catch_response=True) as reply:
                if "Se connecter" in reply.text and "/connexion" in reply.url:
                    reply.failure("login refused")

        @task
        def pages(self) -> None:
            if self.email in WORKERS:
                self.client.get("/accompagnement/")
                self.client.get("/accompagnement/propositions")
            else:
                self.client.get("/structure/")

    class Resident(HttpUser):
        """A resident on a phone, logged in with an access code once."""

        fixed_count = int(os.environ.get("RELAIS_LOAD_RESIDENTS", "10"))
        wait_time = between(2, 5)
        number = 0

        def on_start(self) -> None:
            Resident.number += 1
            codes = os.environ["RELAIS_LOAD_CODES"].split(",")
            token = csrf(self.client.get("/code"))
            self.client.post("/code", data={"code": codes[Resident.number % len(codes)],
                                            "csrf_token": token})

        @task
        def pages(self) -> None:
            self.client.get("/moi/")
            self.client.get("/moi/savoir-faire")


if __name__ == "__main__":
    sys.exit(main())
