"""A rate limit by query cost, per subject, in Redis: each subject may spend ``budget`` cost units per
fixed window of ``window_seconds``, shared by every replica.

A request over the budget is refused and not charged (its cost is given back), and told how long until
the window ends. If Redis fails, requests are let through and the failure is logged: the limit protects
capacity, it is not worth an outage.
"""

from __future__ import annotations

import math

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("usage_gateway.rate_limit")

# KEYS[1] the subject's window; ARGV: cost, budget, window in ms. Returns -1 if allowed, else the ms left.
_CHARGE = """
local spent = redis.call('INCRBY', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  left = tonumber(ARGV[3])
end
if spent > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return left
end
return -1
"""


class CostRateLimiter:
    def __init__(
        self, redis: Redis, *, budget: int, window_seconds: int, prefix: str = "usage-gateway:cost:"
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_CHARGE)
        self.budget = budget
        self.window_ms = window_seconds * 1000
        self._prefix = prefix

    async def charge(self, subject: str, cost: int) -> int | None:
        """Charge ``cost`` to ``subject``'s window: None if it fits, else whole seconds until it resets."""
        try:
            left = await self._script(
                keys=[self._prefix + subject], args=[max(cost, 0), self.budget, self.window_ms]
            )
        except RedisError as exc:
            log.warning("rate_limit.redis_failed", error=str(exc), effect="request let through")
            return None
        left = int(left)
        return None if left < 0 else max(1, math.ceil(left / 1000))
