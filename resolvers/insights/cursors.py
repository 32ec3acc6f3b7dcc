"""The opaque cursors of the insight connections: unpadded URL-safe base64 of a JSON object naming the
connection it was made for and the last node's position in that connection's order."""

from __future__ import annotations

import base64
import json
from typing import Any

from usage_gateway.errors import BadUserInput

_MAX_LENGTH = 4096


def encode(kind: str, position: dict[str, str]) -> str:
    text = json.dumps({"c": kind, **position}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, kind: str, names: tuple[str, ...]) -> dict[str, str]:
    """The position in ``cursor``, whose fields are ``names`` (strings); BadUserInput unless it is a cursor
    of ``kind`` with exactly those fields."""
    try:
        if len(cursor) > _MAX_LENGTH:
            raise ValueError("too long")
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload: Any = json.loads(raw.decode())
    except ValueError:
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor") from None
    if not isinstance(payload, dict) or set(payload) != {"c", *names}:
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor")
    if payload["c"] != kind:
        raise BadUserInput("`after` is not a cursor of this connection: it was made for another one")
    if not all(isinstance(payload[name], str) and "\x00" not in payload[name] for name in names):
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor")
    return {name: payload[name] for name in names}
