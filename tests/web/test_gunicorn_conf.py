"""The gunicorn settings as gunicorn reads them (`--config python:web.gunicorn_conf`)."""

from __future__ import annotations

import gc

from gunicorn.config import Config

from web import gunicorn_conf


def settings() -> Config:
    """What gunicorn keeps of the module: the names it knows (others would be silently ignored)."""
    config = Config()
    for name, value in vars(gunicorn_conf).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_the_master_freezes_what_it_loaded_before_each_fork() -> None:
    config = settings()
    assert (config.worker_class_str, config.preload_app) == ("gthread", True)
    gc.unfreeze()
    loaded = [[n] for n in range(1000)]  # container objects, which the collector tracks
    try:
        config.pre_fork(None, None)
        assert gc.get_freeze_count() >= len(loaded)  # a worker's collections will skip them
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
