"""The gunicorn settings as gunicorn reads them (`--config python:web.gunicorn_conf`)."""

from __future__ import annotations

import gc

from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker

from web import gunicorn_conf
from web.gunicorn_worker import FairThreadWorker


def settings() -> Config:
    """What gunicorn keeps of the module: the names it knows (others would be silently ignored)."""
    config = Config()
    for name, value in vars(gunicorn_conf).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_threaded_workers_that_take_connections_only_with_a_free_thread() -> None:
    config = settings()
    assert config.worker_class is FairThreadWorker and issubclass(FairThreadWorker, ThreadWorker)
    assert config.threads > 1


def test_the_master_freezes_what_it_loaded_before_each_fork() -> None:
    config = settings()
    assert config.preload_app
    gc.unfreeze()
    loaded = [[n] for n in range(1000)]  # container objects, which the collector tracks
    try:
        config.pre_fork(None, None)
        assert gc.get_freeze_count() >= len(loaded)  # a worker's collections will skip them
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
