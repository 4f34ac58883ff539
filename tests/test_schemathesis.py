"""Issue 14: a bounded, seeded Schemathesis run against a live server, with and without the admin token.

Fails on any 5xx and on any response that does not match the OpenAPI schema (status code, content type,
headers, body) or a 405 whose ``Allow`` header is wrong. Schemathesis generates URLs with host names:
the server's name resolution is stubbed (numeric loopback only, every name refused) and connections off
loopback are refused, so no request and no DNS query leaves the machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from lookalike import Catalog  # noqa: E402
from lookalike.service import ServiceSettings, create_app  # noqa: E402

from .http_server import names_refused, serving_app  # noqa: E402

TOKEN = "schemathesis-admin-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
]
RUN = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def live(built_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[str]]]:
    built_catalog.checkpoint()
    copy = tmp_path_factory.mktemp("schemathesis") / "cat"
    shutil.copytree(built_catalog.path, copy)
    config = ServiceSettings(
        admin_token=TOKEN, allow_private_urls=False, url_timeout=2.0, body_timeout=5.0, cors_origins=[],
        max_upload_bytes=1_000_000, default_k=5, max_k=20,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        refused = names_refused(mp)
        with serving_app(create_app(copy, config)) as port:
            yield port, refused


def _operations(port: int) -> list[Any]:
    api = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    return [result.ok() for result in api.get_all_operations()]


def _run(port: int, headers: dict[str, str]) -> list[str]:
    """Every operation, ``max_examples`` cases each; the failures, one line each."""
    failures: list[str] = []
    for operation in _operations(port):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @RUN
            @given(case=operation.as_strategy(mode))
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

            try:
                check()
            except Unsatisfiable:  # no parameters to break: no negative case exists
                assert mode == GenerationMode.NEGATIVE, operation.path
            except Exception as exc:  # keep going: report every operation that fails
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {str(exc)[:1500]}")
    return failures


def test_undocumented_methods_get_405_with_every_documented_method_in_allow(live: tuple[int, list[str]]) -> None:
    paths: dict[str, set[str]] = {}
    for operation in _operations(live[0]):
        paths.setdefault(operation.path, set()).add(operation.method.upper())
    for path, methods in paths.items():
        url = f"http://127.0.0.1:{live[0]}{path.replace('{product_id}', '13466')}"
        for method in {"PUT", "PATCH", "DELETE", "POST"} - methods:
            r = httpx.request(method, url, timeout=30)
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert methods <= allowed, (method, path, r.headers["allow"], methods)
            assert r.json()["detail"]


def test_api_without_the_admin_token(live: tuple[int, list[str]]) -> None:
    failures = _run(live[0], {})
    assert not failures, "\n\n".join(failures)


def test_api_with_the_admin_token(live: tuple[int, list[str]]) -> None:
    failures = _run(live[0], {"Authorization": f"Bearer {TOKEN}"})
    assert not failures, "\n\n".join(failures)
