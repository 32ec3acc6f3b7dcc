"""What ``usage-gateway doctor`` found: one :class:`Check` per line, rendered as text or JSON, with every
configured secret blanked out of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

import orjson


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but something will bite later
    FAIL = "FAIL"  # the gateway will not work as configured
    SKIP = "skip"  # not checked: a check it needs failed, or its setting is not set


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str  # what was checked and what was found: hosts, never passwords or keys
    hint: str | None = None  # how to fix it, for FAIL and WARN

    def redacted(self, secrets: Iterable[str]) -> Check:
        detail, hint = self.detail, self.hint
        for secret in secrets:
            detail = detail.replace(secret, "***")
            hint = hint.replace(secret, "***") if hint is not None else None
        return replace(self, detail=detail, hint=hint)


def failed(checks: Sequence[Check]) -> bool:
    return any(check.status is Status.FAIL for check in checks)


def render_text(checks: Sequence[Check]) -> str:
    """One line per check (status mark, name, what was found, the fix), then a count by status."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        line = f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}"
        if check.hint and check.status in (Status.FAIL, Status.WARN):
            line += f" → {check.hint}"
        lines.append(line)
    counts = ", ".join(
        f"{sum(check.status is status for check in checks)} {status.value}" for status in Status
    )
    lines.append(f"{'failed' if failed(checks) else 'passed'}: {counts}")
    return "\n".join(lines)


def render_json(checks: Sequence[Check]) -> str:
    return orjson.dumps(
        {"ok": not failed(checks), "checks": [asdict(check) for check in checks]}, option=orjson.OPT_INDENT_2
    ).decode()
