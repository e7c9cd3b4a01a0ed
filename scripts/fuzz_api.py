#!/usr/bin/env python3
"""A bounded schemathesis run against the live API: gunicorn on 127.0.0.1 over the demo data.

    python scripts/fuzz_api.py                  # 25 valid and 25 invalid inputs per operation
    python scripts/fuzz_api.py --examples 5

Every operation of /api/v1/openapi.json gets inputs generated from the document (valid and
invalid), sent over HTTP with an admin's write token, as tests/api/test_schemathesis.py does
in-process (where the responses are also checked against the document). Prints the statuses seen
and every server error (5xx); fails when there is one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "claire.martin@relais.demo"


def fuzz(base: str, token: str, examples: int) -> tuple[Counter[int], list[str]]:
    """Statuses seen and server errors, over every operation in both generation modes."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.generation.modes import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid document raises here
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                response = case.call(base_url=base, headers=headers, timeout=60)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(f"{response.status_code} {case.method} {case.formatted_path} "
                                  f"{case.body!r:.200}: {response.text[:300]}")

            run()
    return statuses, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=25, help="inputs per operation and mode")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "scripts"))
    from crash_test import demo_server, demo_token

    with tempfile.TemporaryDirectory(prefix="relais-fuzz-") as folder, \
            demo_server(Path(folder), RELAIS_API_RATE_LIMIT="100000 per minute") as (base, instance):
        statuses, errors = fuzz(base, demo_token(instance, ADMIN, write=True), args.examples)
    print(f"{sum(statuses.values())} requests; statuses: "
          + ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
          + f"; server errors: {len(errors)}")
    for error in errors:
        print("  " + error, file=sys.stderr)
    return 1 if errors or not statuses else 0


if __name__ == "__main__":
    sys.exit(main())
