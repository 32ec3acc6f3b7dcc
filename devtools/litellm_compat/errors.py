"""LiteLLM's error bodies, which differ by status (CONTRACT.md §2.1)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer: ``status`` and the JSON ``body`` LiteLLM sends with it."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def detail_error(status: int, message: str) -> ApiError:
    """FastAPI ``HTTPException(detail={"error": …})``: 400, 403 and 500 from the endpoints."""
    return ApiError(status, {"detail": {"error": message}})


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """LiteLLM's 422 handler keeps only ``type``, ``loc`` and ``msg`` of each pydantic error."""
    return ApiError(422, {"detail": errors})


def auth_error(message: str, *, error_type: str = "auth_error", param: str | None = None) -> ApiError:
    """``ProxyException`` raised by ``user_api_key_auth``."""
    return ApiError(401, {"error": {"message": message, "type": error_type, "param": param, "code": "401"}})
