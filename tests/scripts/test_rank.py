"""scripts/rank.py, the evaluation contract, run for real on a corpus written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = [
    {"id": "n1", "text": "Atelier couture\nAnimer un atelier couture pour les femmes du quartier."},
    {"id": "n2", "text": "Réparation de vélos\nTenir l'atelier d'autoréparation de vélos le mercredi."},
    {"id": "n3", "text": "Aide aux devoirs\nAccompagner des collégiens dans leurs devoirs après l'école."},
    {"id": "n4", "text": "Repas solidaire", "title": "Repas solidaire"},
    {"id": 5, "text": "Jardin partagé\nEntretenir les potagers : semis, arrosage, récolte."},
]
QUERIES = [
    {"qid": "q1", "query": "jsuis couturière, jfais des ourlets"},
    {"qid": 2, "query": "I fix bikes"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rank_prints_one_ranking_per_query(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    cache = tmp_path / "cache"
    argv = [sys.executable, "scripts/rank.py", "--corpus", str(corpus), "--queries", str(queries),
            "--k", "3", "--cache-dir", str(cache)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["qid"] for line in lines] == ["q1", 2]
    assert all(set(line) == {"qid", "ranking"} and len(line["ranking"]) == 3 for line in lines)
    assert lines[0]["ranking"][0] == "n1" and lines[1]["ranking"][0] == "n2"
    assert all(isinstance(doc, str) for line in lines for doc in line["ranking"])  # ids as strings
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".json", ".npy", ".npy"]


def test_the_service_and_rank_py_rank_identically(app: object, session: object, world: object,
                                                  tmp_path: Path) -> None:
    """scripts/rank.py and the service's proposals go through one pipeline: same corpus, same
    declarations, same rankings."""
    from datetime import date

    from web.extensions import matching
    from web.services.matching import NEEDS
    from web.services.needs import NeedInput, create_need

    corpus = []
    for row in CORPUS:
        title, _, description = str(row["text"]).partition("\n")
        need, _ = create_need(session, matching, world.member,  # type: ignore[attr-defined]
                              NeedInput(title=title, description=description or title), date.today())
        corpus.append({"id": need.id, "text": need.description, "title": need.title})
    declarations = [*QUERIES, {"qid": "q3", "query": "je ne sais pas conduire mais je jardine"}]
    argv = [sys.executable, "scripts/rank.py", "--corpus", str(write_jsonl(tmp_path / "c.jsonl", corpus)),
            "--queries", str(write_jsonl(tmp_path / "q.jsonl", declarations)), "--k", "5"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    script = [json.loads(line)["ranking"] for line in done.stdout.splitlines()]
    service = [[str(r.doc_id) for r in matching.rank(session, NEEDS, q["query"], 5, None)]  # type: ignore[arg-type]
               for q in declarations]
    assert service == script
    assert len({tuple(r) for r in script}) == 3  # three different rankings, not one order
