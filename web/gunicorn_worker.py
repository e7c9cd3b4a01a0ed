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

from gunicorn.workers.gthread import ThreadWorker


class FairThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """`gthread` that accepts only while a thread is free (see the module's docstring)."""

    # ThreadWorker.run() accepts while `nr_conns < worker_connections`, asked at every turn of
    # its loop (a finished request wakes the loop): the limit is the configured one while a thread
    # is free, and the connections already held (none more) while every thread is busy.
    @property
    def worker_connections(self) -> int:
        return self._connections_limit if self.busy < self.cfg.threads else self.nr_conns

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._connections_limit = value

    @property
    def busy(self) -> int:
        """Connections in the thread pool: those held, but for the idle keep-alive ones and the
        ones still waiting for their request's first bytes."""
        return int(self.nr_conns - len(self.keepalived_conns) - len(self.pending_conns))
