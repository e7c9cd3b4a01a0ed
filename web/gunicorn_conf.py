"""gunicorn settings (`gunicorn --config python:web.gunicorn_conf "web:create_app()"`)."""

from __future__ import annotations

import gc
import os
from typing import Any

# FAISS searches one query at a time: OpenMP threads only fight the gthread workers for the
# cores (measured: 20 ms with 2 threads against 0.9 ms with one, under load). Set before the app
# (and faiss) is imported by preload_app.
os.environ.setdefault("OMP_NUM_THREADS", "1")

bind = os.environ.get("RELAIS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread that takes a connection only while a thread is free (web/gunicorn_worker.py).
worker_class = "web.gunicorn_worker.FairThreadWorker"
threads = int(os.environ.get("RELAIS_THREADS", "4"))
# Load the model and the index once in the master: workers share those pages after fork.
preload_app = True
timeout = 60
# Idle keep-alive connections stay open longer than a client (or a load balancer) waits between
# requests: at gunicorn's default of 2 s, a request sent just as the server closed the connection
# was lost ("connection reset"; 9–11 in 3,200 requests of scripts/load.py). gthread workers park
# idle connections in their poller, not in a thread.
keepalive = int(os.environ.get("RELAIS_KEEPALIVE", "75"))
graceful_timeout = 20
accesslog = "-"
max_requests = 2000
max_requests_jitter = 200


def post_fork(_server: Any, _worker: Any) -> None:
    """Each worker opens its own database connections (sockets must not cross a fork)."""
    from web.extensions import db

    db.dispose()


def pre_fork(_server: Any, _worker: Any) -> None:
    """In the master, before each fork: what preload_app loaded (the models, the rankers' Python
    structures) goes to the collector's permanent generation. A worker's full collections then
    skip it (70–120 ms at 100k residents, every thread of the worker stalled, about once in
    160 requests) and never write those objects' headers, which would copy the shared pages."""
    gc.collect()
    gc.freeze()
