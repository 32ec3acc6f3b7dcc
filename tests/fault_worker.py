"""A gateway process for the fault tests:
``python -m tests.fault_worker DB REDIS|- LITELLM NOW FIRST LAST N SEED``.

Runs N concurrent ``ensure`` calls, each over its own range of days between FIRST and LAST (overlapping,
drawn from SEED), and prints one JSON line: how many calls ended with every day present, the failures, and
how many times this process fetched and stored each day (its ``day.fetched`` log events).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from datetime import date, datetime, timedelta

import orjson
from structlog.testing import capture_logs

from tests.gateway_harness import clock_at, gateway


def ranges(first: date, last: date, n: int, seed: int) -> list[tuple[date, date]]:
    """``n`` overlapping ranges of 3 to 15 days within ``first``..``last``."""
    rng = random.Random(seed)
    span = (last - first).days + 1
    found = []
    for _ in range(n):
        length = rng.randint(3, min(15, span))
        start = first + timedelta(days=rng.randrange(span - length + 1))
        found.append((start, start + timedelta(days=length - 1)))
    return found


async def main(
    database_url: str, redis_url: str, litellm_url: str, now: str, first: str, last: str, n: int, seed: int
) -> None:
    wanted = ranges(date.fromisoformat(first), date.fromisoformat(last), n, seed)
    with capture_logs() as logs:
        async with gateway(
            database_url,
            litellm_url,
            redis_url=None if redis_url == "-" else redis_url,
            clock=clock_at(datetime.fromisoformat(now)),
        ) as gw:
            reports = await asyncio.gather(*(gw.days.ensure(start, end) for start, end in wanted))
    failures = sorted({day.isoformat() for report in reports for day in report.failures})
    stored = Counter(str(entry["day"]) for entry in logs if entry["event"] == "day.fetched")
    complete = sum(r.complete for r in reports)
    print(orjson.dumps({"complete": complete, "failures": failures, "stored": stored}).decode())


if __name__ == "__main__":
    db, redis, litellm, now, first, last, n, seed = sys.argv[1:9]
    asyncio.run(main(db, redis, litellm, now, first, last, int(n), int(seed)))
