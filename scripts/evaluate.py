#!/usr/bin/env python3
"""Score scripts/rank.py on the dev benchmarks of ../shared/eval and print them beside its baselines.

    python scripts/evaluate.py [--bench pairs esco rome] [--cache-dir DIR] [--ci]

Needs the evaluation folder next to the repository (../shared/eval); without it, says so and
exits cleanly. Nothing from that folder is copied into the project.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT.parent / "shared" / "eval"
# name -> (corpus file, dev queries file, group-by field or None)
BENCHMARKS: dict[str, tuple[str, str, str | None]] = {
    "pairs": ("needs.jsonl", "pairs.dev.jsonl", "style"),
    "esco": ("esco_fr_synonyms.corpus.jsonl", "esco_fr_synonyms.dev.jsonl", None),
    "rome": ("rome_fr_appellations.corpus.jsonl", "rome_fr_appellations.dev.jsonl", None),
}
METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10")


def baseline_rows(readme: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """Reference rows of the evaluation README's table: benchmark -> [(method, figures)]."""
    rows: dict[str, list[tuple[str, list[str]]]] = {}
    current = ""
    if not readme.exists():
        return rows
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 6 or not cells[2].replace(".", "").isdigit():
            continue
        current = cells[0].split(" (")[0] or current
        rows.setdefault(current, []).append((cells[1], cells[2:]))
    return rows


def score(name: str, cache_dir: Path | None, ci: bool) -> dict:
    """Run score.py on one benchmark with rank.py as the ranker; its JSON answer."""
    corpus, queries, group_by = BENCHMARKS[name]
    command = (f"{shlex.quote(sys.executable)} scripts/rank.py"
               " --corpus {corpus} --queries {queries} --k {k}")
    if cache_dir is not None:
        command += f" --cache-dir {shlex.quote(str(cache_dir))}"
    argv = [sys.executable, str(EVAL_DIR / "score.py"), "--corpus", str(EVAL_DIR / corpus),
            "--queries", str(EVAL_DIR / queries), "--cmd", command, "--json"]
    if group_by:
        argv += ["--group-by", group_by]
    if ci:
        argv.append("--ci")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"score.py failed on {name}:\n{done.stderr[-3000:]}")
    result: dict = json.loads(done.stdout)
    return result


def _figures(metrics: dict) -> list[str]:
    out = []
    for m in METRICS:
        cell = f"{float(metrics[m]):.3f}" if m in metrics else "-"
        if f"{m}_ci" in metrics:
            low, high = metrics[f"{m}_ci"]
            cell += f" ({low:.2f}–{high:.2f})"
        out.append(cell)
    return out


def main(argv: list[str] | None = None) -> int:
    """Score the chosen benchmarks and print one markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--cache-dir", type=Path, help="vector cache for rank.py (spares re-encoding)")
    parser.add_argument("--ci", action="store_true", help="add bootstrap confidence intervals")
    args = parser.parse_args(argv)
    if not (EVAL_DIR / "score.py").exists():
        print(f"No evaluation data at {EVAL_DIR}: nothing to measure.")
        return 0
    baselines = baseline_rows(EVAL_DIR / "README.md")
    lines = ["| benchmark | method | R@1 | R@5 | R@10 | MRR@10 |", "|---|---|---|---|---|---|"]
    for name in args.bench:
        result = score(name, args.cache_dir.resolve() if args.cache_dir else None, args.ci)
        for method, figures in baselines.get(name, []):
            lines.append(f"| {name} | {method} | " + " | ".join(figures) + " |")
        groups = result["results"]
        overall = groups.get("all", groups)
        lines.append(f"| **{name}** | **hybrid (scripts/rank.py)** | "
                     + " | ".join(f"**{f}**" for f in _figures(overall)) + " |")
        for group, metrics in groups.items():
            if group != "all" and isinstance(metrics, dict) and not group.endswith("=None"):
                lines.append(f"| {name} | · {group} (n={metrics.get('n', '?')}) | "
                             + " | ".join(_figures(metrics)) + " |")
        print(f"{name}: {result['seconds']:.0f} s, {result['missing']} queries without ranking",
              file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
