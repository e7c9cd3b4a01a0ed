"""The one place that creates the database engine and opens sessions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for SQLite's one write lock
log = logging.getLogger(__name__)


class Database:
    """Holds the engine; created once, configured by the application factory or a script."""

    def __init__(self, url: str | None = None) -> None:
        self._engine: Engine | None = None
        if url:
            self.configure(url)

    def configure(self, url: str) -> None:
        """Create the engine for `url` (sqlite:///… or postgresql+psycopg://…)."""
        if self._engine is not None:
            self._engine.dispose()
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self._engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Database.configure(url) was not called")
        return self._engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back on error and always closes."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Bring the schema to the latest migration."""
        from alembic import command

        command.upgrade(self.alembic_config(), "head")

    def alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def dispose(self) -> None:
        """Drop pooled connections (after a fork, or at shutdown)."""
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Scripts use `with Database(url) as db:` so no connection outlives them."""
        self.dispose()


def empty_write_ahead_log(session: Session, wait_ms: int = 5_000) -> bool:
    """SQLite: copy the write-ahead log into the database file and cut it to zero bytes. An
    erasure's page images are overwritten in the database (secure_delete), but the log keeps the
    pages as they were before, person and all, until later writes happen to wrap over them, and
    any copy of the instance folder carries it. Nothing to do on PostgreSQL.

    A reader in the middle of a transaction (another process's long read) keeps the log: this
    waits `wait_ms` for it, not the connections' BUSY_TIMEOUT_MS (a worker's click on « Effacer »
    hung 30 s, then the log stayed all the same, unsaid), and returns False with a warning then;
    the daily retention run empties the log again."""
    if session.get_bind().dialect.name != "sqlite":
        return True
    connection = session.connection()
    connection.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_ms)}")
    try:
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if busy:
        log.warning("the write-ahead log could not be emptied (a reader kept it): erased pages stay "
                    "in it until the next retention run")
    return not busy


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets gunicorn workers read while one writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # An erased declaration is overwritten on disk, not left in free pages that later backups
    # (scripts/backup.py copies pages) would carry; some SQLite builds default to it, not all.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
