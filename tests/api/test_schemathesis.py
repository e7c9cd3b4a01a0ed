"""A bounded schemathesis run against the app (through WSGI), authenticated with a real admin token.

Every operation of the OpenAPI document gets valid and invalid inputs; every response must be as
the document says (status code, content type, headers, body) and none may be a server error.
schemathesis's pytest plugin does not run under this pytest, so the cases are driven through
Hypothesis directly (`operation.as_strategy`), with a fixed seed and a small budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import ApiEnv, api_environment

EXAMPLES = 20  # per operation and mode: about 800 requests in all


@schemathesis.check
def valid_input_passes_validation(_ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid input may be refused for what a schema cannot say (an unknown territory, a
    text with nothing to search: `errors.service`), never by the API's own input validation.

    It replaces schemathesis's positive_data_acceptance, which takes every 422 for a mismatch."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    errors = response.json().get("errors") or {}
    if response.status_code == 400 or set(errors) - {"service"}:
        raise AssertionError(f"schema-valid input refused by validation: {response.text}")
    return None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, template_database: str) -> Iterator[ApiEnv]:
    with api_environment(tmp_path_factory.mktemp("fuzz"), template_database) as env:
        yield env


def test_api_conforms_to_its_document(fuzzed: ApiEnv) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed.app)
    headers = {"Authorization": f"Bearer {fuzzed.tokens['admin']}"}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len([m for item in fuzzed.spec["paths"].values() for m in item
                                   if m in {"get", "post", "put", "delete", "patch"}])
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                response = case.call_and_validate(
                    headers=headers, excluded_checks=[positive_data_acceptance],
                    additional_checks=[valid_input_passes_validation])
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # try all, then report every failure
                failures.append(f"{mode.value} {operation.label}:\n{exc}")
    assert not failures, "\n\n".join(failures)
    assert not [code for code in statuses if code >= 500]
    assert statuses.get(200, 0) + statuses.get(201, 0) > 50, statuses  # not only refusals
