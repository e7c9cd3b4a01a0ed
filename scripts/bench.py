#!/usr/bin/env python3
"""Benchmark Relais end to end on a generated population (scripts/generate.py), on this machine.

    python scripts/bench.py --residents 10000 --json
    RELAIS_ENCODERS=use python scripts/bench.py --residents 100000 --json --workdir /tmp/relais-100k
    python scripts/bench.py --residents 1000000 --index-only --json     # vector search alone

On a fresh temporary database (SQLite, or --database-url for PostgreSQL) and instance folder:

1. ingest: residents (rows, consent, declaration) analysed, embedded, stored and indexed through
   the matching service's bulk path: declarations prepared per batch (spaCy, statement vectors,
   hybrid artefacts) by `matcher.pipeline.prepare_ahead` in --processes worker processes while
   this process writes the previous batch (`store_declarations`: one commit and `sync` per
   --batch residents), then needs one by one (`store_need`); throughput in statements per second,
   all included (the workers' start-up too);
2. index build: `MatchingService.rebuild` from the stored vectors (what a new node or a damaged
   index file costs), saved to the instance folder;
3. match in process: `propose_for_need(..., k=20)` for sampled needs: need -> top 20 residents
   (the service's ranker), with the hard filters, the policy and the explanations, proposals
   written; p50 / p95;
4. match over HTTP: gunicorn (web/gunicorn_conf.py, 2 workers) started on the same database, an
   admin's API token, --clients concurrent clients posting needs' texts to /api/v1/search/residents
   (limit 20) on 127.0.0.1; p50 / p95, and the resident memory (RSS, and PSS: shared pages split)
   of each worker afterwards;
5. ANN quality and cost: the residents' FAISS index (flat under 30,000 vectors, HNSW above) against
   an exact numpy scan of the same stored vectors, in this process, with the needs' statement
   vectors as queries: recall@10 (identical sentences tie: see `tie_aware_recall`) and
   exact_scan_ratio = mean ANN search time / mean exact scan time (single queries).

--index-only skips the service: synthetic sentence-like vectors (scripts/bench_index.py), one per
resident unless --vectors-per-resident, HNSW build, p50 / p95, recall@10, memory.

With --json the last line printed is one JSON object. Timings depend on what else the machine is
doing: the load average before and after is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
# FAISS answers one query at a time here, as in gunicorn (web/gunicorn_conf.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import bench_index  # noqa: E402
import generate  # noqa: E402
import numpy as np  # noqa: E402

K = 10
MATCH_K = 20
# The keys every --json report has (null when the measure could not be made).
CONTRACT = ("residents", "ingest_statements_per_s", "index_build_s", "match_p50_ms", "match_p95_ms",
            "http_p95_ms", "rss_mb_per_worker", "ann_recall_at_10", "exact_scan_ratio")


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    if not seconds:
        return float("nan"), float("nan")
    ms = np.asarray(seconds) * 1000
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


def proc_memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS (shared pages divided among the processes sharing them) of a process, in MB."""
    out = {}
    for name, key in (("status", "VmRSS:"), ("smaps_rollup", "Pss:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    out["rss_mb" if key == "VmRSS:" else "pss_mb"] = round(int(line.split()[1]) / 1024, 1)
                    break
        except OSError:
            pass
    return out


# ---------------------------------------------------------------------------- the service run


class Bench:
    """One population on one temporary deployment."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from web.config import Config

        self.args = args
        self.workdir = workdir
        self.instance = workdir / "instance"
        url = args.database_url or f"sqlite:///{workdir / 'relais.db'}"
        self.config = Config(instance_dir=self.instance, database_url=url, secret_key="bench")
        self.report: dict[str, Any] = {}
        self.today = date.today()

    def run(self) -> dict[str, Any]:
        from models import Database
        from web.services.matching import MatchingService

        args = self.args
        self.matching = MatchingService()
        self.matching.configure_from(self.config)
        self.report.update(configuration(self.matching, self.config))
        print(f"configuration: {json.dumps(self.report)}", flush=True)
        with Database(self.config.database_url) as database, database.session() as session:
            database.upgrade()
            self.matching.load_or_rebuild(session)
            if not self._populated(session):
                self.world(session)
                self.ingest(session)
            else:
                print("reusing the population already in the database (no ingest measured)", flush=True)
            self.phase(self.build, session)
            self.phase(self.match_in_process, session)
            self.phase(self.ann, session)
        if args.clients > 0 and args.http_requests > 0:
            self.phase(self.http)
        return self.report

    def phase(self, step: Callable[..., None], *args: Any) -> None:
        """Run one measure; a failure is reported (and its keys left null), the others still run."""
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what broke and goes on
            traceback.print_exc()
            self.report[f"{step.__name__}_error"] = f"{type(exc).__name__}: {exc}"

    # -- population

    def _populated(self, session: Any) -> bool:
        from sqlmodel import func, select

        from models import Resident
        return bool(session.exec(select(func.count()).select_from(Resident)).one())

    def world(self, session: Any) -> None:
        """Territories, one centre social per territory, an association, an admin, a member."""
        from models import Organisation, Role, Territory, User

        self.territories: dict[str, int] = {}
        self.centres: dict[str, int] = {}
        for t in generate.TERRITORIES:
            row = Territory(name=t["name"], commune=t["commune"], qpv_code=t["qpv_code"],
                            latitude=t["latitude"], longitude=t["longitude"])
            session.add(row)
            session.flush()
            self.territories[t["key"]] = row.id or 0
            centre = Organisation(name=f"Centre social {t['name']} ({t['commune']})", kind="centre_social",
                                  territory_id=row.id)
            session.add(centre)
            session.flush()
            self.centres[t["key"]] = centre.id or 0
        association = Organisation(name="Réseau solidaire (banc d'essai)", kind="association")
        session.add(association)
        session.flush()
        first_centre = next(iter(self.centres.values()))
        self.admin = User(email="admin@bench.invalid", display_name="Admin", role=Role.ADMIN,
                          organisation_id=first_centre)
        self.member = User(email="membre@bench.invalid", display_name="Membre",
                           role=Role.ASSOCIATION_MEMBER, organisation_id=association.id)
        session.add_all([self.admin, self.member])
        session.commit()

    def ingest(self, session: Any) -> None:
        from matcher.pipeline import ingest_processes, prepare_ahead
        from models import Consent, ConsentMethod, ConsentScope, Need, NeedStatus, Resident, SkillDeclaration

        args, matching = self.args, self.matching
        statements = residents_done = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        last_print = started
        assert matching.analyzer is not None
        batches = chunks(generate.residents(args.residents, args.seed), args.batch)
        processes = ingest_processes(args.processes)
        self.report.update(ingest_processes=processes)
        for batch, prepared in prepare_ahead(batches, lambda g: g.declaration, matching.models(), processes):
            rows = [Resident(first_name=g.first_name, last_initial=g.last_initial,
                             territory_id=self.territories[g.territory],
                             organisation_id=self.centres[g.territory],
                             languages=list(dict.fromkeys([*g.languages, *p.analysis.languages])),
                             availability=g.availability, wants=g.wants, created_by_id=self.admin.id or 0)
                    for g, p in zip(batch, prepared, strict=True)]
            session.add_all(rows)
            session.flush()
            declarations = [SkillDeclaration(resident_id=r.id or 0, text=g.declaration,
                                             created_by_id=self.admin.id or 0)
                            for r, g in zip(rows, batch, strict=True)]
            session.add_all(declarations)
            session.add_all(Consent(resident_id=r.id or 0, given_on=self.today - timedelta(days=30),
                                    expires_on=self.today + timedelta(days=335), scope=ConsentScope.MATCHING,
                                    method=ConsentMethod.ORAL_IN_PERSON, recorded_by_id=self.admin.id or 0)
                            for r in rows)
            session.flush()
            stored = matching.store_declarations(session, list(zip(declarations, prepared, strict=True)))
            statements += sum(stored)
            session.commit()
            matching.sync(session)
            residents_done += len(batch)
            if time.perf_counter() - last_print > 30:
                last_print = time.perf_counter()
                print(f"  ingested {residents_done} residents, {statements} statements, "
                      f"{statements / (last_print - started):.0f}/s, load {load_average()}", flush=True)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started  # all threads: cpu / wall = cores the ingest used
        self.report.update(ingest_residents=residents_done, ingest_statements=statements,
                           ingest_s=round(elapsed, 1), ingest_cpu_s=round(cpu, 1),
                           ingest_statements_per_s=round(statements / elapsed, 1))
        print(f"ingest: {residents_done} residents, {statements} statements in {elapsed:.1f} s "
              f"= {statements / elapsed:.0f} statements/s, {cpu:.1f} s CPU", flush=True)

        need_count = args.needs if args.needs is not None else generate.default_needs(args.residents)
        started = time.perf_counter()
        need_statements = 0
        for batch in chunks(generate.needs(need_count, args.seed), args.batch):
            posted = [Need(organisation_id=self.member.organisation_id or 0,
                           territory_id=self.territories[g.territory], kind=g.kind, title=g.title,
                           description=g.description, languages=g.languages, availability=g.availability,
                           status=NeedStatus.OPEN, created_by_id=self.member.id or 0)
                      for g in batch]
            session.add_all(posted)
            session.flush()
            for need in posted:
                need_statements += len(matching.store_need(session, need))
            session.commit()
        matching.sync(session)
        elapsed = time.perf_counter() - started
        self.report.update(needs=need_count, need_statements=need_statements,
                           needs_ingest_statements_per_s=round(need_statements / elapsed, 1))
        print(f"needs: {need_count} needs, {need_statements} statements in {elapsed:.1f} s", flush=True)

    def build(self, session: Any) -> None:
        from web.services.matching import RESIDENTS

        started = time.perf_counter()
        self.matching.rebuild(session)
        elapsed = time.perf_counter() - started
        stats = self.matching.collections[RESIDENTS].index.stats()
        hybrid = {name: round(size / 2**20, 1)
                  for name, size in self.matching.hybrid[RESIDENTS].memory().items()}
        self.report.update(index_build_s=round(elapsed, 2), index_kind=stats["kind"],
                           index_vectors=stats["count"],
                           index_mb=round(int(str(stats["index_bytes"])) / 2**20, 1),
                           hybrid_mb=hybrid, bench_rss_mb=proc_memory_mb(os.getpid()).get("rss_mb"))
        print(f"index build: {elapsed:.1f} s ({stats}); hybrid ranker MB {hybrid}", flush=True)

    # -- matching

    def sample_needs(self, session: Any) -> list[Any]:
        from sqlmodel import col, select

        from models import Need, NeedKind
        needs = session.exec(select(Need).where(Need.kind == NeedKind.SKILL).order_by(col(Need.id))).all()
        return random.Random(self.args.seed).sample(list(needs), min(len(needs), self.args.queries))

    def match_in_process(self, session: Any) -> None:
        from web.services.proposals import propose_for_need

        times: list[float] = []
        proposed = 0
        deadline = time.perf_counter() + self.args.budget
        needs = self.sample_needs(session)
        propose_for_need(session, self.matching, needs[0], self.today, k=MATCH_K)  # warm caches
        for need in needs:
            started = time.perf_counter()
            proposed += propose_for_need(session, self.matching, need, self.today, k=MATCH_K)
            times.append(time.perf_counter() - started)
            if time.perf_counter() > deadline and len(times) >= 5:
                break
        p50, p95 = percentiles(times)
        self.report.update(match_queries=len(times), match_p50_ms=p50, match_p95_ms=p95,
                           match_proposals_per_need=round(proposed / max(1, len(times)), 1))
        print(f"match in process: {len(times)} needs, p50 {p50} ms, p95 {p95} ms, "
              f"{proposed} proposals", flush=True)

    def ann(self, session: Any) -> None:
        """The residents' index against an exact scan of the same vectors, in this process."""
        from sqlmodel import col, select

        from models import NeedStatement, SkillDeclaration, SkillStatement
        from web.services.matching import RESIDENTS, from_blobs

        rows = session.exec(
            select(SkillStatement.id, SkillStatement.vector)
            .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
            .where(col(SkillDeclaration.is_current).is_(True), col(SkillStatement.negated).is_(False))
            .order_by(col(SkillStatement.id))).all()
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        matrix = from_blobs([r[1] for r in rows], self.matching.dim)
        del rows
        queries_rows = session.exec(select(NeedStatement.vector).order_by(col(NeedStatement.id))
                                    .limit(self.args.ann_queries)).all()
        queries = from_blobs(list(queries_rows), self.matching.dim)
        index = self.matching.collections[RESIDENTS].index
        found, _lat = bench_index.latencies(index, queries, K)
        found = bench_index.rescored(found, queries, matrix, ids)  # true cosines (HNSW keeps float16)
        ann_times, exact_times, truth_ids, truth_scores = [], [], [], []
        for q in queries:  # alternate, so both see the same machine load
            started = time.perf_counter()
            index.search(q[None, :], K)
            ann_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            scores = matrix @ q
            top = np.argpartition(-scores, K)[:K]
            top = top[np.argsort(-scores[top])]
            exact_times.append(time.perf_counter() - started)
            truth_ids.append(ids[top])
            truth_scores.append(scores[top])
        quality = bench_index.quality(found, (np.asarray(truth_ids), np.asarray(truth_scores)), K)
        recalls = tie_aware_recall(found, truth_scores, K)
        ann_mean, exact_mean = float(np.mean(ann_times)), float(np.mean(exact_times))
        p50, p95 = percentiles(ann_times)
        self.report.update(ann_recall_at_10=round(float(np.mean(recalls)), 4),
                           ann_worst_query_recall_at_10=round(float(np.min(recalls)), 2),
                           ann_recall_at_10_by_id=quality["recall_at_10"],
                           ann_queries=len(queries), ann_p50_ms=p50, ann_p95_ms=p95,
                           exact_scan_mean_ms=round(exact_mean * 1000, 3),
                           exact_scan_ratio=round(ann_mean / exact_mean, 4))
        print(f"ANN ({index.kind}, {len(index)} vectors): recall@10 {np.mean(recalls):.4f} "
              f"(by id, ties counted as misses: {quality['recall_at_10']}), "
              f"p50 {p50} ms, p95 {p95} ms; exact numpy scan {exact_mean * 1000:.2f} ms; "
              f"ratio {ann_mean / exact_mean:.4f}", flush=True)

    # -- HTTP

    def http(self) -> None:
        from sqlmodel import select

        from models import Database, User
        from web.api.tokens import create_token

        with Database(self.config.database_url) as database, database.session() as session:
            admin = session.exec(select(User).where(User.email == "admin@bench.invalid")).one()
            token = create_token(session, admin, "bench", False, 1).secret
            texts = [f"{n.title}. {n.description}" for n in self.sample_needs(session)]
        port = free_port()
        env = {**os.environ, "RELAIS_INSTANCE_DIR": str(self.instance),
               "DATABASE_URL": self.config.database_url, "SECRET_KEY": "bench", "PORT": str(port),
               "WEB_CONCURRENCY": str(self.args.workers),
               "RELAIS_API_RATE_LIMIT": "1000000 per minute"}
        log_path = self.workdir / "gunicorn.log"
        with gunicorn(env, log_path) as (process, base):
            workers = worker_pids(process.pid)
            timings = load(base, token, texts, self.args.clients, self.args.http_requests, self.args.budget)
            memory = [proc_memory_mb(pid) for pid in worker_pids(process.pid)]
        ok = [t for t, status in timings if status == 200]
        p50, p95 = percentiles(ok)
        rss = [m.get("rss_mb", 0.0) for m in memory]
        pss = [m.get("pss_mb", 0.0) for m in memory]
        self.report.update(http_clients=self.args.clients, http_workers=len(workers),
                           http_requests=len(timings),
                           http_errors=len(timings) - len(ok), http_p50_ms=p50, http_p95_ms=p95,
                           rss_mb_per_worker=max(rss, default=0.0), rss_mb_workers=rss,
                           pss_mb_workers=pss)
        print(f"HTTP: {len(timings)} requests by {self.args.clients} clients, "
              f"{len(timings) - len(ok)} errors, "
              f"p50 {p50} ms, p95 {p95} ms; workers RSS {rss} MB, PSS {pss} MB", flush=True)


def configuration(matching: Any, config: Any) -> dict[str, Any]:
    from matcher.index import EXACT_LIMIT, HNSW_PARAMS

    url = config.database_url
    encoders = getattr(matching, "encoders", None)
    return {"embedder": matching.embedder.name if matching.embedder else None,
            "relais_encoders": os.environ.get("RELAIS_ENCODERS", "(unset)"),
            "hybrid_encoders": getattr(encoders, "spec", None),
            "database": url.split(":", 1)[0], "exact_limit": EXACT_LIMIT,
            "hnsw": {"m": HNSW_PARAMS.m, "ef_construction": HNSW_PARAMS.ef_construction,
                     "ef_search": HNSW_PARAMS.ef_search},
            "omp_threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(),
            "load_average_start": load_average()}


def tie_aware_recall(found: bench_index.Found, truth_scores: Sequence[np.ndarray], k: int) -> list[float]:
    """Per query, the share of the true top k that the ANN answer matches, ties included.

    People write the same sentence ("Je parle français", "je fais le ménage"): identical vectors
    tie, and which of the tied ids the exact and the approximate search return is arbitrary. An
    answer counts when its true cosine (`bench_index.rescored`) is at least the true k-th score
    (float32 rounding aside).
    """
    out = []
    for answer, scores in zip(found, truth_scores, strict=True):
        kth = float(scores[min(k, len(scores)) - 1])
        out.append(min(k, sum(score >= kth - 1e-5 for _, score in answer[:k])) / min(k, len(scores)))
    return out


# ---------------------------------------------------------------------------- gunicorn and clients


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class gunicorn:  # noqa: N801 - used as a context manager, like open()
    """The real server (web/gunicorn_conf.py) on 127.0.0.1, stopped on exit."""

    def __init__(self, env: dict[str, str], log_path: Path, timeout: float = 900) -> None:
        self.env, self.log_path, self.timeout = env, log_path, timeout

    def __enter__(self) -> tuple[subprocess.Popen[bytes], str]:
        binary = Path(sys.executable).with_name("gunicorn")
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen([str(binary), "--config", "python:web.gunicorn_conf",
                                         "web:create_app()"], cwd=ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{self.env['PORT']}"
        deadline = time.monotonic() + self.timeout
        wanted = int(self.env.get("WEB_CONCURRENCY", "2"))
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                    if response.status == 200 and len(worker_pids(self.process.pid)) >= wanted:
                        return self.process, base
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"gunicorn did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)

    def __exit__(self, *_exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: the master's children."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def load(base: str, token: str, texts: list[str], clients: int, requests: int,
         budget: float) -> list[tuple[float, int]]:
    """`clients` threads posting search requests until `requests` are done or `budget` seconds pass."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + budget

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body = json.dumps({"text": texts[i % len(texts)], "limit": MATCH_K}).encode()
            request = urllib.request.Request(base + "/api/v1/search/residents", data=body, method="POST",
                                             headers={"Authorization": f"Bearer {token}",
                                                      "Content-Type": "application/json"})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            with lock:
                results.append((time.perf_counter() - started, status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------------------- index only


def index_only(args: argparse.Namespace) -> dict[str, Any]:
    """Vector search alone at the population's size (synthetic vectors shaped like sentences)."""
    from matcher.index import HNSW_PARAMS

    count = int(args.residents * args.vectors_per_resident)
    started = time.perf_counter()
    data = bench_index.clustered(count + args.ann_queries, args.dim, args.seed)
    vectors, queries = data[:count], data[count:]
    del data
    truth = bench_index.exact_truth(vectors, np.arange(count), queries, 64)
    print(f"data: {count} x {args.dim} in {time.perf_counter() - started:.0f} s", flush=True)
    hnsw = bench_index.bench_hnsw(vectors, queries, truth, K, HNSW_PARAMS, [], 0.0, False, args.seed)
    exact_times = []
    for q in queries[:50]:
        started = time.perf_counter()
        scores = vectors @ q
        np.argpartition(-scores, K)[:K]
        exact_times.append(time.perf_counter() - started)
    exact_mean = float(np.mean(exact_times))
    return {"residents": args.residents, "index_only": True, "vectors": count, "dim": args.dim,
            "index_build_s": hnsw["build_s"], "vector_p50_ms": hnsw["p50_ms"],
            "vector_p95_ms": hnsw["p95_ms"],
            "ann_recall_at_10": hnsw["recall_at_10"], "index_bytes": hnsw["index_bytes"],
            "id_map_bytes": hnsw["id_map_bytes"], "rss_growth_bytes": hnsw["rss_growth_bytes"],
            "exact_scan_mean_ms": round(exact_mean * 1000, 2),
            "exact_scan_ratio": round(hnsw["p50_ms"] / 1000 / exact_mean, 4),
            "load_average_end": load_average()}


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--residents", type=generate.parse_size, default=1_000,
                        help="1k, 10k, 100k, 1M or a number")
    parser.add_argument("--needs", type=int, default=None, help="default: residents / 20 (20 to 20,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256, help="residents ingested per transaction")
    parser.add_argument("--processes", default=None,
                        help="worker processes preparing declarations (default RELAIS_INGEST_PROCESSES, "
                             "else one per core; 0: in the bench's process)")
    parser.add_argument("--queries", type=int, default=40, help="needs matched in process and over HTTP")
    parser.add_argument("--ann-queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (0: no HTTP)")
    parser.add_argument("--http-requests", type=int, default=160)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--budget", type=float, default=180, help="seconds at most per latency phase")
    parser.add_argument("--database-url", default="", help="default: SQLite in the work folder")
    parser.add_argument("--workdir", default="", help="keep the database and index here (reused if "
                        "it holds a population: ingest is then not measured); default: a temporary folder")
    parser.add_argument("--index-only", action="store_true", help="vector search alone (synthetic vectors)")
    parser.add_argument("--vectors-per-resident", type=float, default=1.0, help="with --index-only")
    parser.add_argument("--dim", type=int, default=512, help="with --index-only")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.residents >= 10_000:
        os.environ.setdefault("RELAIS_ENCODERS", "use")  # e5 encodes ~70 sentences/s: not at this size

    if args.index_only:
        report = index_only(args)
    else:
        workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="relais-bench-"))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            report = {"residents": args.residents, **Bench(args, workdir).run()}
        finally:
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
        report["load_average_end"] = load_average()
        for key in CONTRACT:
            report.setdefault(key, None)
    for key, value in report.items():
        print(f"  {key}: {value}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
