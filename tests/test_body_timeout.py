"""Issue 14: a request body that stops arriving is answered 408 and closed at the body time limit; a client
that hangs up mid-upload is one INFO line in the log, not ERROR tracebacks. Over raw sockets to uvicorn."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from lookalike import Catalog
from lookalike.service import ServiceSettings, create_app

from .http_server import serving_app

BODY_TIMEOUT = 1.0
SLACK = 2.0
BOUNDARY = "b0undary"


@pytest.fixture(scope="module")
def port(built_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    built_catalog.checkpoint()
    copy = tmp_path_factory.mktemp("body-timeout") / "cat"
    shutil.copytree(built_catalog.path, copy)
    settings = ServiceSettings(admin_token=None, cors_origins=[], body_timeout=BODY_TIMEOUT)
    with serving_app(create_app(copy, settings), log_config=None) as p:  # uvicorn's logs reach caplog
        yield p


def _half_upload(port: int) -> socket.socket:
    part = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff\xd8"
        + b"\x00" * 500
    )
    head = (
        f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(part) * 2}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=BODY_TIMEOUT + SLACK + 5)
    sock.sendall(head + part)  # half the declared body, then nothing
    return sock


def test_a_stalled_body_is_answered_408_and_closed_at_the_body_time_limit(port: int) -> None:
    start = time.monotonic()
    with _half_upload(port) as sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b"did not arrive" in answer
    assert took < BODY_TIMEOUT + SLACK


def test_a_client_hanging_up_mid_upload_is_one_info_line(port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lookalike.service")
    with _half_upload(port):
        time.sleep(0.3)
    time.sleep(0.7)  # the server notices the hang-up
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    mine = [r for r in caplog.records if r.name == "lookalike.service"]
    assert len(mine) == 1 and mine[0].levelno == logging.INFO and "disconnected" in mine[0].getMessage()
