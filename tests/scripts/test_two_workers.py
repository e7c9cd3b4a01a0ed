"""Two gunicorn workers, one database: a change written through one worker is matched by the other.

Each worker holds its own FAISS replica and applies the IndexEvent rows it has not seen before it
searches, so the first answer the other worker gives after the write already reflects it: well
within the one second the issue asks, whatever the machine's speed (no timing is asserted). The
`X-Relais-Worker` response header says which process answered.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlmodel import Session

from tests.conftest import World, add_resident
from web.api.tokens import create_token
from web.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402 - the benchmark's gunicorn runner (scripts/bench.py)

QUERY = "Quelqu'un pour réparer les accordéons de la fanfare du quartier"
NEW_DECLARATION = "Je répare des accordéons et des harmoniums depuis vingt ans. Je parle portugais."


def call(base: str, token: str, method: str, path: str, body: dict[str, Any]) -> tuple[int, int, Any]:
    """(status, worker pid, JSON body) of one request on a new connection."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, int(response.headers["X-Relais-Worker"]), json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, int(exc.headers.get("X-Relais-Worker") or 0), exc.read().decode()


def searches(base: str, token: str, concurrent: int = 4) -> list[tuple[int, int, Any]]:
    """`concurrent` searches at once (a worker busy with one leaves the next to the other)."""
    with ThreadPoolExecutor(concurrent) as pool:
        return list(pool.map(lambda _: call(base, token, "POST", "/api/v1/search/residents",
                                            {"text": QUERY, "limit": 5}), range(concurrent)))


def quoted(answer: Any, resident_id: int) -> list[str]:
    """The statements of `resident_id` a search answer quotes."""
    return [pair["matched_text"] for result in answer["results"] if result["resident"]["id"] == resident_id
            for pair in result["pairs"]]


def test_a_declaration_written_through_one_worker_is_matched_by_the_other(
        config: Config, session: Session, world: World, tmp_path: Path) -> None:
    rosa = add_resident(session, world, "Rosa", "Je fais le ménage dans des bureaux. Je repasse le linge.")
    rosa_id = rosa.resident.id or 0
    token = create_token(session, world.worker_a, "deux workers", True, None).secret
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(config.instance_dir), "DATABASE_URL": config.database_url,
           "SECRET_KEY": "two-workers", "PORT": str(bench.free_port()), "WEB_CONCURRENCY": "2",
           "RELAIS_API_RATE_LIMIT": "10000 per minute"}
    with bench.gunicorn(env, tmp_path / "gunicorn.log", timeout=240) as (process, base):
        workers = set(bench.worker_pids(process.pid))
        assert len(workers) == 2

        # Before: both workers answer, and neither knows of accordions.
        seen: dict[int, Any] = {}
        for _ in range(30):
            for status, pid, answer in searches(base, token):
                assert status == 200, answer
                seen[pid] = answer
            if set(seen) == workers:
                break
        assert set(seen) == workers, "one worker never answered"
        assert not any("accordéon" in text for answer in seen.values() for text in quoted(answer, rosa_id))

        # The change, through whichever worker takes it.
        status, writer, answer = call(base, token, "PUT", f"/api/v1/residents/{rosa_id}/declaration",
                                      {"text": NEW_DECLARATION})
        assert status == 200 and writer in workers, answer

        # The other worker's first answer after the write has it.
        other: Any = None
        for _ in range(30):
            other = next((a for status, pid, a in searches(base, token) if pid != writer), None)
            if other is not None:
                break
        assert other is not None, "the other worker never answered after the write"
        assert other["results"] and other["results"][0]["resident"]["id"] == rosa_id
        assert any("accordéons" in text for text in quoted(other, rosa_id))
