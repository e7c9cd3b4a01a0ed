#!/usr/bin/env python3
"""The RQ worker for Relais's background jobs (CSV imports, full reindex).

    REDIS_URL=redis://127.0.0.1:6379/0 python scripts/worker.py [--burst]

It is `rq worker` with the application's configuration: the app (database, model, index) is
built once from the environment (the same variables as the web process), then RQ forks a work
horse per job, which shares the loaded model's pages, like gunicorn's preloaded workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one job per worker process: FAISS needs no threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="run the queued jobs, then stop")
    parser.add_argument("--simple", action="store_true",
                        help="run jobs in this process (no fork per job; for debugging)")
    args = parser.parse_args(argv)

    from redis import Redis
    from rq import SimpleWorker, Worker

    from web import create_app
    from web.config import Config
    from web.extensions import db
    from web.services.jobs import QUEUE

    config = Config()
    if not config.redis_url:
        print("REDIS_URL is not set: without Redis, jobs run inside the web process.", file=sys.stderr)
        return 2
    app = create_app(config)
    connection = Redis.from_url(config.redis_url)
    # Sockets must not cross a fork: each work horse opens its own database connections.
    os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
    db.dispose()
    worker_class = SimpleWorker if args.simple else Worker
    with app.app_context():
        worker = worker_class([QUEUE], connection=connection)
        worker.work(burst=args.burst, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
