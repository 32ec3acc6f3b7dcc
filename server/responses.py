"""JSON responses encoded with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> OrjsonResponse:
    """A GraphQL-shaped error answered before GraphQL runs (e.g. 401)."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return OrjsonResponse(body, status_code=status, headers=headers, media_type=media_type)
