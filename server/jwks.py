"""Public keys from the identity provider's JWKS (``JWT_JWKS_URL``), fetched with httpx and cached.

The set is trusted for ``cache_seconds``; a token naming a key id the set lacks causes one refetch, at
most every ``refresh_seconds`` (rotation is picked up, made-up key ids cannot hammer the provider). A
failed fetch keeps the keys already known; only with none known is it an error.

Only keys that verify RS256 or ES256 are kept, each pinned to that one algorithm: symmetric (``oct``)
keys in a JWKS are ignored, so a public key can never verify an HMAC token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWTError

log = structlog.get_logger("usage_gateway.jwks")

# Key type → the one algorithm its keys verify (EC keys only on P-256, which is ES256).
PINNED_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}
_MAX_JWKS_BYTES = 1 << 20


class KeysUnavailable(Exception):
    """No key is known and the JWKS could not be fetched."""


class UnknownKey(Exception):
    """The JWKS has no usable key with this id."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        refresh_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._cache_seconds = cache_seconds
        self._refresh_seconds = refresh_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._attempted_at: float | None = None  # the last fetch, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> tuple[PyJWK, str]:
        """The key with id ``kid`` and the algorithm it is pinned to."""
        if self._stale():
            await self._refresh(lambda: self._stale())
        found = self._keys.get(kid)
        if found is None and self._may_refetch():
            await self._refresh(lambda: kid not in self._keys and self._may_refetch())
            found = self._keys.get(kid)
        if found is None:
            if not self._keys:
                raise KeysUnavailable("no signing key could be fetched from the JWKS")
            raise UnknownKey(f"no signing key with kid {kid!r}")
        return found, PINNED_ALGORITHMS[found.key_type or ""]

    def _stale(self) -> bool:
        expired = self._fetched_at is None or self._clock() - self._fetched_at >= self._cache_seconds
        return expired and self._may_refetch()

    def _may_refetch(self) -> bool:
        # Failed fetches count too: a provider that is down is asked at most once a refresh period.
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._refresh_seconds

    async def _refresh(self, still_needed: Callable[[], bool]) -> None:
        # Single flight: whoever waited on the lock re-checks, so one fetch serves every waiter.
        async with self._lock:
            if not still_needed():
                return
            self._attempted_at = self._clock()
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, PyJWTError) as exc:
                log.warning("jwks.fetch_failed", url=self.url, error=str(exc), keeping=len(self._keys))
                return
            self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str, PyJWK]:
        self.fetches += 1
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            response = await client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > _MAX_JWKS_BYTES:
            raise ValueError("the JWKS is larger than 1 MiB")
        document: Any = response.json()
        if not isinstance(document, dict):
            raise ValueError("the JWKS is not a JSON object")
        return {
            key.key_id: key
            for key in PyJWKSet.from_dict(document)
            if key.key_id
            and key.public_key_use in ("sig", None)
            and PINNED_ALGORITHMS.get(key.key_type or "") == key.algorithm_name
        }
