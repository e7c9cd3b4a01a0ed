"""gunicorn's threaded worker, taking a new connection only when one of its threads is free.

gunicorn's `gthread` worker accepts every connection it can (up to `worker_connections`, 1,000)
and queues the requests for its threads: two workers facing eight clients split them as they
happen to wake, 5 + 3 or 6 + 2 as often as 4 + 4, and a worker's requests share one interpreter,
so the crowded worker's answers took twice as long as the other's. Here a worker leaves the
listening socket to the others while all its threads are busy, as gunicorn's `sync` workers do;
idle keep-alive connections do not count (a browser holding one open must not stop a worker from
taking new ones), and a request arriving on one is still served by this worker.

Measured on 100,000 generated residents (`scripts/bench.py`'s HTTP phase, 2 workers x 4
threads, 8 clients, texts already seen): see README, "Speed and scale".
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class FairThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """`gthread` that accepts only while a thread is free (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.busy = 0  # connections handed to the thread pool and not finished
        super().__init__(*args, **kwargs)

    # ThreadWorker.run() accepts while `nr_conns < worker_connections`, asked at every turn of
    # its loop (a finished request wakes the loop): the limit is the configured one while a thread
    # is free, and the connections already held (none more) while every thread is busy.
    @property
    def worker_connections(self) -> int:
        return self._connections_limit if self.busy < self.cfg.threads else self.nr_conns

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._connections_limit = value

    def enqueue_req(self, conn: Any) -> None:
        self.busy += 1
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.busy -= 1
        super().finish_request(conn, fs)
