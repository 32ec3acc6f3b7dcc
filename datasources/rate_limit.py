"""A rate limit by query cost, per subject, in Redis: each subject may spend ``budget`` cost units per
fixed window of ``window_seconds``, shared by every replica.

A request over the budget is refused and not charged (its cost is given back), and told how long until
the window ends. If Redis fails, requests are let through (fail open, :mod:`hot_tier`, which logs the
outage once): the limit protects capacity, it is not worth an outage.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis

from usage_gateway.datasources.hot_tier import HotTier, HotTierDown

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
        self, redis: HotTier | Redis, *, budget: int, window_seconds: int, prefix: str = "usage-gateway:cost:"
    ) -> None:
        self._hot = HotTier.of(redis)
        self._script = self._hot.client.register_script(_CHARGE)
        self.budget = budget
        self.window_ms = window_seconds * 1000
        self._prefix = prefix

    async def charge(self, subject: str, cost: int) -> int | None:
        """Charge ``cost`` to ``subject``'s window: None if it fits, else whole seconds until it resets."""
        keys, args = [self._prefix + subject], [max(cost, 0), self.budget, self.window_ms]
        try:
            left = await self._hot.call("rate_limit", lambda _: self._script(keys=keys, args=args))
        except HotTierDown:
            return None  # let through
        left = int(left)
        return None if left < 0 else max(1, math.ceil(left / 1000))
