"""Configuration read from the environment, with embedded defaults under the instance folder."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from matcher.policy import Policy

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass
class Config:
    """Everything a deployment may set. Read once by the app factory and by scripts."""

    instance_dir: Path = field(
        default_factory=lambda: Path(_env("RELAIS_INSTANCE_DIR", str(ROOT / "instance"))).resolve()
    )
    database_url: str = ""
    secret_key: str = ""
    embedder: str = field(default_factory=lambda: _env("RELAIS_EMBEDDER", "use-multilingual"))
    # Matching: how many proposals per need / per resident, and the similarity under which
    # nothing is proposed (cosine of the best statement pair; 0.2 kept every gold pair of the
    # pairs dev set and cut 22 % of random pairs, 0.25 kept 96 %: web/services/proposals.py).
    proposals_per_need: int = field(default_factory=lambda: int(_env("RELAIS_PROPOSALS_PER_NEED", "5")))
    proposals_per_resident: int = field(
        default_factory=lambda: int(_env("RELAIS_PROPOSALS_PER_RESIDENT", "3")))
    min_similarity: float = field(default_factory=lambda: float(_env("RELAIS_MIN_SIMILARITY", "0.2")))
    consent_months: int = field(default_factory=lambda: int(_env("RELAIS_CONSENT_MONTHS", "12")))
    # Retention (scripts/retention.py): profiles inactive this long are warned, then anonymised
    # after the grace period.
    retention_months: int = field(default_factory=lambda: int(_env("RELAIS_RETENTION_MONTHS", "24")))
    retention_grace_days: int = field(
        default_factory=lambda: int(_env("RELAIS_RETENTION_GRACE_DAYS", "30")))
    # Matching policy (see matcher/policy.py): hard filters and soft boosts.
    same_territory_only: bool = field(
        default_factory=lambda: _env("RELAIS_SAME_TERRITORY_ONLY", "0") == "1")
    require_availability: bool = field(
        default_factory=lambda: _env("RELAIS_REQUIRE_AVAILABILITY", "0") == "1")
    max_distance_km: float = field(default_factory=lambda: float(_env("RELAIS_MAX_DISTANCE_KM", "15")))
    monthly_cap: int = field(default_factory=lambda: int(_env("RELAIS_MONTHLY_CAP", "2")))
    session_cookie_secure: bool = field(
        default_factory=lambda: _env("RELAIS_SECURE_COOKIES", "0") == "1")
    # Reverse proxies in front (nginx, a load balancer): their X-Forwarded-For / -Proto name the
    # client, whose address the login limits count. 0 (default): none, and the headers, which
    # anyone can send, are ignored.
    proxy_hops: int = field(default_factory=lambda: int(_env("RELAIS_PROXY_HOPS", "0")))
    # Background jobs (imports, reindex) go to RQ on this Redis; empty: they run inline, in a
    # thread of the web process.
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", ""))
    testing: bool = False

    def __post_init__(self) -> None:
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = _env("DATABASE_URL", f"sqlite:///{self.instance_dir / 'relais.db'}")
        if self.database_url.startswith("postgres://"):  # the scheme some hosts still hand out
            self.database_url = "postgresql+psycopg://" + self.database_url[len("postgres://"):]
        elif self.database_url.startswith("postgresql://"):
            self.database_url = "postgresql+psycopg://" + self.database_url[len("postgresql://"):]
        if not self.secret_key:
            self.secret_key = os.environ.get("SECRET_KEY") or self._instance_secret()

    def policy(self) -> Policy:
        return Policy(same_territory_only=self.same_territory_only,
                      require_availability=self.require_availability,
                      max_distance_km=self.max_distance_km, monthly_cap=self.monthly_cap)

    @property
    def index_dir(self) -> Path:
        return self.instance_dir / "index"

    def _instance_secret(self) -> str:
        """A random key kept in the instance folder, so sessions survive restarts."""
        path = self.instance_dir / "secret_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip()

    def flask_mapping(self) -> dict[str, object]:
        """The keys Flask and its extensions read."""
        return {
            "SECRET_KEY": self.secret_key,
            "TESTING": self.testing,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SECURE": self.session_cookie_secure,
            "PERMANENT_SESSION_LIFETIME": 8 * 3600,
            "BABEL_DEFAULT_LOCALE": "fr",
            "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
            "WTF_CSRF_TIME_LIMIT": 8 * 3600,
            "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        }
