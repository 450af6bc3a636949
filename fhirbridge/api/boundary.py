"""The error boundary: every request ends in a problem document or in a visibly broken stream,
and every unexpected failure in one log line naming the method, the route template and the
error class (never the message, a traceback or a value: any of them may quote patient data).

Starlette's ``ServerErrorMiddleware`` answers an unhandled error with a 500 but then re-raises
it, so the ASGI server logs it again with its traceback and drops the keep-alive connection.
``ErrorBoundary`` sits inside it (``app.add_middleware``) and raises nothing:

- before the response started, the client gets a complete 500 problem and the connection
  stays usable;
- after it started (a streamed export), the status is already sent, so the response is left
  incomplete: the server closes the connection without the terminating chunk and the client
  reads a truncated body as an error, never as a clean short 200. The server notes that in a
  line of its own, without details.

``BodyLimit`` refuses request bodies over ``MAX_BODY_BYTES`` with a 413 problem, before they
are read when ``Content-Length`` says so, or as soon as the bytes received pass the limit.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhirbridge.api.problems import ContentTooLarge, content_too_large, problem_response

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "ErrorBoundary", "route_template"]

# Our largest bodies are notification Bundles with a few full resources: far below this.
MAX_BODY_BYTES = 4 * 1024 * 1024

log = logging.getLogger("fhirbridge.api")
access = logging.getLogger("fhirbridge.api.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/time-entries/{entry_id}``), never the path sent."""
    route = scope.get("route")
    return str(getattr(route, "path", "(no route)"))


def _error_class(error: BaseException) -> str:
    # Task groups wrap the one error that matters; its class says more than the group's.
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return type(error).__name__


class ErrorBoundary:
    """Pure ASGI middleware; see the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        status = 0

        async def tracking(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking)
            # The access line, in place of the server's: it names the route template, not the
            # path sent, which holds patient ids (uvicorn runs with access_log=False).
            access.info("%s %s %d", scope.get("method", "?"), route_template(scope), status)
        except ClientDisconnect:
            # The client hung up: nobody to answer, and no fault of ours.
            log.info("client left during %s %s", scope.get("method", "?"), route_template(scope))
        except Exception as error:
            log.error(
                "unhandled %s on %s %s",
                _error_class(error),
                scope.get("method", "?"),
                route_template(scope),
            )
            if started:
                return  # incomplete on purpose: see the module doc
            response = problem_response(500, "internal-error", "Internal error", "unexpected error")
            await response(scope, receive, send)


class BodyLimit:
    """Pure ASGI middleware; see the module doc."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_bytes:
            response = content_too_large(ContentTooLarge(self.max_bytes))
            await response(scope, receive, send)
            return
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ContentTooLarge(self.max_bytes)  # answered by api.problems
            return message

        await self.app(scope, counting, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0
