"""scripts/generate.py: the same seed gives the same people; a population is varied and plausible."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import generate  # noqa: E402

SMS_MARKERS = re.compile(r"\b(jsuis|jsais|bcp|qd|pr|avc|tjrs|mtn|pcq|rdv|jfé|jpeu|vs)\b")
ENGLISH = re.compile(r"\bI (cook|bake|sew|knit|fix|repair|translate|interpret|look after|help|grow|garden|do|"
                     r"build|cut|braid|play|sing|coach|teach|drive|have|care for|clean|run|sell|organise|"
                     r"make|work|write|take|film|keep|raise|speak|am|worked|'m)\b")


def test_a_record_depends_only_on_seed_and_index() -> None:
    small = list(generate.residents(50, seed=3))
    assert small == list(generate.residents(50, seed=3))
    assert generate.resident(40, seed=3) == small[40]
    assert list(generate.residents(10, seed=3, start=40)) == small[40:50]
    assert generate.need(7, seed=3) == list(generate.needs(10, seed=3))[7]
    assert generate.resident(0, seed=3) != generate.resident(0, seed=4)


def test_the_command_line_writes_the_same_jsonl_twice(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        subprocess.run([sys.executable, "scripts/generate.py", "--residents", "300", "--needs", "30",
                        "--seed", "5", "--out", str(tmp_path / name)], cwd=ROOT, check=True, timeout=120)
        outputs.append(((tmp_path / name / "residents.jsonl").read_bytes(),
                        (tmp_path / name / "needs.jsonl").read_bytes()))
    assert outputs[0] == outputs[1]
    people = [json.loads(line) for line in outputs[0][0].decode().splitlines()]
    needs = [json.loads(line) for line in outputs[0][1].decode().splitlines()]
    assert len(people) == 300 and len(needs) == 30
    assert people[12] == json.loads(json.dumps(generate.resident(12, seed=5).__dict__, ensure_ascii=False))


def test_residents_are_plausible_and_pseudonymous() -> None:
    territories = {t["key"] for t in generate.TERRITORIES}
    for person in generate.residents(500, seed=1):
        assert person.first_name in generate.FIRST_NAMES and len(person.last_initial) == 1
        assert " " not in person.first_name.strip() and person.territory in territories
        assert person.languages and set(person.languages) <= set(generate.LANGUAGES)
        assert person.availability and set(person.availability) <= set(generate.AVAILABILITY)
        assert person.wants and set(person.wants) <= set(generate.WANTS)
        assert 20 <= len(person.declaration) <= 1_000
        assert "{" not in person.declaration and "  " not in person.declaration


def test_a_population_is_not_copies_of_itself() -> None:
    people = list(generate.residents(5_000, seed=0))
    declarations = [p.declaration for p in people]
    assert len(set(declarations)) / len(declarations) > 0.99
    sentences = Counter(s.strip() for d in declarations for s in re.split(r"[.!…\n]", d) if s.strip())
    assert len(sentences) > 8_000  # thousands of distinct sentences, not a few hundred templates
    most_common_share = sentences.most_common(1)[0][1] / len(declarations)
    assert most_common_share < 0.1
    assert {p.register for p in people} == set(generate.REGISTERS)
    assert len({d for p in people for d in p.domains}) == len(generate.DOMAINS)
    assert len({(p.first_name, p.last_initial) for p in people}) > 1_500
    sms = sum(bool(SMS_MARKERS.search(d)) for d in declarations) / len(declarations)
    english = sum(bool(ENGLISH.search(d)) for d in declarations) / len(declarations)
    assert 0.05 < sms < 0.5 and 0.05 < english < 0.5
    # Some people say what they cannot do (kept, never matched).
    assert 0.03 < sum("pas" in d.split() for d in declarations) / len(declarations) < 0.5


def test_about_five_statements_per_declaration() -> None:
    """Counted by the real analyser, as the service cuts them."""
    from matcher.analysis import get_analyzer

    analyzer = get_analyzer()
    counts = [len(analyzer.analyze(p.declaration).statements) for p in generate.residents(150, seed=2)]
    assert 3.5 <= sum(counts) / len(counts) <= 6.5
    assert min(counts) >= 1


def test_needs_are_skills_and_resources_with_residents_who_fit() -> None:
    needs = list(generate.needs(400, seed=0))
    kinds = Counter(n.kind for n in needs)
    assert kinds["skill"] > kinds["resource"] > 20
    assert len({n.description for n in needs}) > 390
    asked = {n.domain for n in needs if n.kind == "skill"}
    offered = {d for p in generate.residents(500, seed=0) for d in p.domains}
    assert asked <= offered
    assert all(n.title and n.description and set(n.availability) <= set(generate.AVAILABILITY) for n in needs)


@pytest.mark.parametrize(("text", "size"), [("1k", 1_000), ("10K", 10_000), ("100k", 100_000),
                                             ("1M", 1_000_000), ("2500", 2_500)])
def test_sizes(text: str, size: int) -> None:
    assert generate.parse_size(text) == size
