"""ASGI middleware: a request-body byte cap and time limit enforced while the body streams in, and
security headers."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.errors import LookalikeError

__all__ = ["BodySizeLimitMiddleware", "RequestTimeoutError", "RequestTooLargeError", "SecurityHeadersMiddleware"]


class RequestTooLargeError(LookalikeError):
    """The request body is over the service's byte cap."""

    status_code = 413


class RequestTimeoutError(LookalikeError):
    """The request body did not arrive in full within the service's body time limit."""

    status_code = 408


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` without reading them whole, or not in full within
    ``body_timeout`` seconds of the request's start (a client that stops sending mid-body is answered 408
    and the connection closed, instead of holding it open forever).

    A declared ``Content-Length`` over the cap is answered 413 at once, before any of the body is read.
    Otherwise the bytes are counted as they arrive and :class:`RequestTooLargeError` is raised from
    ``receive`` as soon as the count passes the cap (chunked uploads, lying clients); the app's
    :class:`LookalikeError` handler turns it into a 413, and so does this middleware if it escapes.

    Any response sent before the request body has been read to its end (a 413 from the cap, a 401 or
    415 answered without reading the upload) carries ``Connection: close``: otherwise the server would
    go on reading, and discarding, the rest of the body to keep the connection alive, however long it is.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout

    def _message(self) -> str:
        return f"request body is over the {self.max_bytes:,}-byte limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, "invalid Content-Length header", close=True)
                    return
                if declared > self.max_bytes:
                    await _send_json(send, 413, self._message(), close=True)
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        received = 0
        body_done = not has_body
        started = False

        loop = asyncio.get_running_loop()
        deadline = None if self.body_timeout is None else loop.time() + self.body_timeout

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or deadline is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"the request body did not arrive within {self.body_timeout:g} s"
                    ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError(self._message())
                body_done = body_done or not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body_done:  # the rest of the body is never read: hang up after this response
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (RequestTooLargeError, RequestTimeoutError) as exc:
            if started:
                raise
            await _send_json(send, exc.status_code, str(exc), close=True)


class SecurityHeadersMiddleware:
    """Add ``X-Content-Type-Options: nosniff`` and a same-origin referrer policy to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ):
                    if key not in present:
                        headers.append((key, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _send_json(send: Send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
