"""How the HTTP layer refuses a request: `HttpError`, its JSON body, and the request-size middleware.

The cache API answers `{"detail": message}`; the gateway's paths answer in the OpenAI error format its clients parse.
Every message says which field and why, never anything about a key or a store's address.
"""

from fastapi.responses import JSONResponse

OPENAI_PATHS = ("/v1/chat/completions", "/v1/embeddings")


class HttpError(Exception):
    """A request refused with an HTTP status and a message for its caller; `kind` labels it in the metrics."""

    def __init__(self, status: int, message: str, kind: str, domain: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.domain = status, message, kind, domain


def error_response(status: int, message: str, kind: str, path: str) -> JSONResponse:
    """The body a refusal gets on `path`."""
    if path in OPENAI_PATHS:
        error = {"message": message, "type": "invalid_request_error" if status < 500 else "upstream_error", "param": None, "code": kind}
        return JSONResponse(status_code=status, content={"error": error})
    return JSONResponse(status_code=status, content={"detail": message})


def within_limit(field: str, text: str, limit: int, domain: str) -> None:
    """422 `too_long` when `text` is over `limit` characters: the same check and message on every path.

    Raises:
        HttpError: 422.
    """
    if len(text) > limit:
        raise HttpError(422, f"{field}: {len(text)} characters, over the limit of {limit}", "too_long", domain)


class BodyLimit:
    """ASGI middleware: a POST needs a Content-Length within the limit (411, 413), checked before it is read.

    `on_refuse(status, message, kind, path)` gives the response (and counts it)."""

    def __init__(self, app, max_bytes: int, on_refuse) -> None:
        self.app, self.max_bytes, self.on_refuse = app, max_bytes, on_refuse

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
            response = None
            if not length.isdigit():
                response = self.on_refuse(411, "send the body with a Content-Length header", "no_length", scope["path"])
            elif int(length) > self.max_bytes:
                response = self.on_refuse(
                    413, f"request body of {length} bytes is over the limit of {self.max_bytes}", "too_large", scope["path"]
                )
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
