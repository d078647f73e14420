"""The HTTP API against requests generated from its own ``/openapi.json`` (schemathesis).

Every operation gets generated bodies, paths and queries — valid ones and some that are not —
sent as the role that may use it: no answer may be a 5xx, every answer must match the schema
(its status documented, its body and content type as declared). The same operations without a
token must all be refused with 401, except the few that are public on purpose.

The server is a real ``vbank serve --demo`` of its own (the generated requests change its
data) with the abuse limits raised: they are tested in ``test_limits``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from vbank.serverproc import ServerProcess, start_server

#: operations anyone may call (by path)
PUBLIC = {"/api/v1/auth/login", "/health"}
#: who calls what: the first matching path prefix wins, then a customer
ROLES = (("/api/v1/admin/", "admin"), ("/api/v1/evidence", "auditor"),
         ("/api/v1/queues", "supervisor"))
USERS = {"admin": "admin", "auditor": "audrey", "supervisor": "sam", "customer": "alice"}
#: generated cases per operation and test; enough to reach every branch of the validation
EXAMPLES = 25
UNLIMITED = {"VBANK_LOGINS_PER_ADDRESS_PER_MINUTE": "1000000",
             "VBANK_LOGIN_FAILURES_PER_USER": "1000000",
             "VBANK_LOGIN_FAILURES_PER_ADDRESS": "1000000",
             "VBANK_REDEMPTIONS_PER_MINUTE": "1000000"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("fuzz") / "data", env=UNLIMITED)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


@pytest.fixture(scope="module")
def tokens(fuzzed: ServerProcess) -> dict[str, str]:
    return {role: fuzzed.login(user) for role, user in USERS.items()}


def role_for(path: str) -> str:
    return next((role for prefix, role in ROLES if path.startswith(prefix)), "customer")


def fuzz(api: schemathesis.BaseSchema, examples: int,
         test: Callable[[schemathesis.Case], None]) -> list[str]:
    """Run ``test`` on generated cases of every operation; what failed, per operation.
    (Each operation is its own hypothesis run, so one failure does not hide another's.)"""
    failures = []
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case: schemathesis.Case) -> None:
            test(case)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    return failures


def test_generated_requests_get_no_5xx_and_answers_that_match_the_schema(
        api_schema: schemathesis.BaseSchema, fuzzed: ServerProcess,
        tokens: dict[str, str]) -> None:
    def call(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {tokens[role_for(case.path)]}"}
        case.call_and_validate(base_url=fuzzed.url, headers=headers, checks=[
            not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance])

    failures = fuzz(api_schema, EXAMPLES, call)
    assert not failures, "\n\n".join(failures)


def test_every_operation_but_the_public_ones_refuses_a_caller_without_a_token(
        api_schema: schemathesis.BaseSchema, fuzzed: ServerProcess) -> None:
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=fuzzed.url)
        assert response.status_code < 500, (case.method, case.path, response.text[:200])
        if case.path not in PUBLIC and _routed(case):
            assert response.status_code == 401, (case.method, case.path, case.path_parameters,
                                                 response.text[:200])

    failures = fuzz(api_schema, 5, call)
    assert not failures, "\n\n".join(failures)


def _routed(case: schemathesis.Case) -> bool:
    """Whether the generated URL still names the operation: a path parameter holding a
    slash (other than a file path's), a dot segment or nothing names no route at all, nor
    does a file path holding a line break (Starlette's path convertor, ``.*``, stops at
    one), and the router answers 404 before any authentication, with nothing to leak."""
    for name, value in (case.path_parameters or {}).items():
        text = str(value)
        if text in ("", ".", "..") or ("/" in text and name != "path") or \
                (name == "path" and ("\n" in text or "%0A" in text.upper())):
            return False
    return True
