#!/usr/bin/env python3
"""Rank a corpus for each query with the matcher's hybrid ranker (the evaluation contract).

The same pipeline as the service: corpus lines become documents as needs do
(`web.services.matching.need_document`: title + description), artefacts are made by
`make_artefacts`, and queries are ranked by `HybridIndex.search`, the function behind
`MatchingService.rank` (proposals). RELAIS_ENCODERS ("use+e5", default, or "use") is read as the
service reads it; above `EXACT_DOCS` documents both generate candidates first.

    python scripts/rank.py --corpus corpus.jsonl --queries queries.jsonl --k 10 [--cache-dir DIR]

Corpus lines are {"id", "text"[, "title"]}, query lines {"qid", "query"}; prints one line
{"qid": ..., "ranking": [ids, best first]} per query. Timings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from matcher.hybrid import EXACT_DOCS, Document, HybridIndex, encoder_spec, load_encoders, make_artefacts


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, index the corpus, print the rankings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="JSONL {id, text[, title]}")
    parser.add_argument("--queries", required=True, help="JSONL {qid, query}")
    parser.add_argument("--k", type=int, default=10, help="ranking depth")
    parser.add_argument("--cache-dir", type=Path, help="keep encoded vectors here between runs")
    parser.add_argument("--threads", type=int, default=2,
                        help="e5 threads (2 doubles indexing throughput on a 2-core machine)")
    parser.add_argument("--exact-docs", type=int, default=EXACT_DOCS,
                        help="score every document up to this size, else candidates first (default: the "
                        "service's; lower it to measure the candidate stage on a small corpus)")
    args = parser.parse_args(argv)

    corpus = read_jsonl(args.corpus)
    queries = read_jsonl(args.queries)
    started = time.perf_counter()
    encoders = load_encoders(e5_threads=args.threads, cache_dir=args.cache_dir, spec=encoder_spec())
    documents = [Document(str(r["id"]), r.get("text") or "", r.get("title")) for r in corpus]
    artefacts = make_artefacts(documents, encoders)
    encoders.save()
    index = HybridIndex(encoders, exact_docs=args.exact_docs)
    for document, artefact in zip(documents, artefacts, strict=True):
        index.upsert(document.doc_id, artefact)
    indexed = time.perf_counter()
    rankings = index.search_many([str(q["query"]) for q in queries], args.k)
    encoders.save()
    for query, ranking in zip(queries, rankings, strict=True):
        print(json.dumps({"qid": query["qid"], "ranking": [r.doc_id for r in ranking]}, ensure_ascii=False))
    done = time.perf_counter()
    print(f"rank.py: {len(documents)} documents in {indexed - started:.1f} s, {len(queries)} queries "
          f"in {done - indexed:.1f} s ({1000 * (done - indexed) / max(1, len(queries)):.0f} ms/query)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
