"""schemathesis against /openapi.json of a live MEG: generated requests for every operation, as
the operator; no server error, no response that breaks the schema it documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.api.harness import Harness


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("fuzz")) as harness:
        yield harness


def test_no_server_error_and_every_response_as_documented(fuzzed: Harness) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed.tokens['operator']}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: CI does not flicker
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            check()
        except Exception as err:  # every operation is tried; all failures are reported
            failures[operation.label] = str(err)[:2000]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
