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
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.jsonschema import make_validator  # noqa: E402
from schemathesis.core.parameters import ParameterLocation as Location  # noqa: E402
from schemathesis.core.parameters import plain_str_values  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi import checks as st_checks  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
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
    positive_data_acceptance,  # ST201: the server refuses (422) a request the schema allows
]
# What a request the schema allows may still answer besides 2xx: statuses the schema cannot rule out because
# they depend on the picture's bytes (400 undecodable, 413 too many pixels, 415 not a picture format), on a
# remote server (503, 504) or on the disk (507). Never 422: a 422 means the schema is looser than the server.
POSITIVE_STATUSES = ["2xx", "3xx", "400", "401", "403", "404", "409", "413", "415", "429", "503", "504", "5xx"]
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}}}
)


def _query_valid_as_sent(response: Any, case: Any) -> bool:
    """Whether a case negative only in its query reached the server as a valid query: Schemathesis writes
    non-string items of an array parameter (lists, objects, numbers) as text, and on the wire each is a plain
    string the schema allows; the server cannot tell (Schemathesis replaces wire text only for string-typed
    parameters, so it reports such a case as accepted negative data)."""
    meta = case.meta
    if meta is None or any(meta.is_negative_at(where) for where in (Location.BODY, Location.PATH, Location.HEADER)):
        return False
    container = case.operation.get_parameter_set(Location.QUERY)
    properties = container.schema.get("properties", {}) if container else {}
    wire = parse_qs(urlparse(response.request.url).query, keep_blank_values=True)
    sent: dict[str, Any] = {}
    for name, value in (case.query or {}).items():
        arrays = [b for b in properties.get(name, {}).get("anyOf", []) if b.get("type") == "array"]
        sent[name] = wire[name] if arrays and name in wire else value
    return bool(container) and container.get_strict_validator().is_valid(plain_str_values(sent))


def _is_array(schema: Any) -> bool:
    return isinstance(schema, dict) and any(b.get("type") == "array" for b in schema.get("anyOf", [schema]))


def _form_valid_as_sent(response: Any, case: Any) -> bool:
    """Whether a multipart body reached the server as a valid form: each text part is text on the wire (an
    integer or an object generated for a field is its text), a repeated field is a list of them, and the text
    ``null`` is a field not given (the server's rule). Schemathesis' own guard reads one value per field, so it
    misses list fields."""
    media = case.media_type or ""
    if not media.startswith("multipart/") or not isinstance(case.body, dict):
        return False
    fields = st_checks._sent_form_fields(response, media)
    body = case.operation.get_body_for_media_type(media)
    if fields is None or body is None:
        return False
    schema = body.optimized_schema
    validator = make_validator(schema, st_checks._get_openapi_schema(case).adapter.jsonschema_validator_cls)
    sent: dict[str, Any] = {}
    for name, texts in fields.items():
        if None in texts:  # a file part: binary, a string to the schema
            sent[name] = "file"
            continue
        texts = [t for t in texts if t != "null"]
        if texts and _is_array(schema.get("properties", {}).get(name)):
            sent[name] = texts
        elif texts:
            readings = [r for t in texts for r in st_checks._form_text_readings(t)]
            ok = (r for r in readings if not st_checks._has_errors_at(validator, {**sent, name: r}, name))
            sent[name] = next(ok, readings[0])
    return bool(validator.is_valid(sent))


@schemathesis.check
def negative_data_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """ST202 (the server accepts a request the schema forbids), but not for a query or a form that is valid as
    sent."""
    if _query_valid_as_sent(response, case) or _form_valid_as_sent(response, case):
        return None
    return negative_data_rejection(ctx, response, case)  # type: ignore[no-any-return]


CHECKS.append(negative_data_rejected)
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
    api = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json", config=CONFIG)
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
