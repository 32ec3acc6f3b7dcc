"""What one request may ask for, as one object: built from the settings by the app
(``usage_gateway.server.app.limits_from``), read by the resolvers (the range, ``first``) and by the
schema's limit extensions (depth, aliases, tokens, cost)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_cost: int = 50_000
    max_first: int = 500
    max_range_days: int = 400
