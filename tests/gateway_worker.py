"""A second gateway process for tests: ``python -m tests.gateway_worker DB REDIS|- LITELLM FROM TO NOW N``.

Runs N concurrent ``ensure`` calls over the range and prints how many days each saw closed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date, datetime

from tests.gateway_harness import clock_at, gateway


async def main(
    database_url: str, redis_url: str, litellm_url: str, start: str, end: str, now: str, n: int
) -> None:
    async with gateway(
        database_url,
        litellm_url,
        redis_url=None if redis_url == "-" else redis_url,
        clock=clock_at(datetime.fromisoformat(now)),
    ) as gw:
        reports = await asyncio.gather(
            *(gw.days.ensure(date.fromisoformat(start), date.fromisoformat(end)) for _ in range(n))
        )
    print(" ".join(str(len(r.closed)) for r in reports))


if __name__ == "__main__":
    db, redis, litellm, start, end, now, n = sys.argv[1:8]
    asyncio.run(main(db, redis, litellm, start, end, now, int(n)))
