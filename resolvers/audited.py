"""Auditing what a viewer does: one ``audit_log`` entry per mutation or download, however it ends.

    async with audited(ctx, "refreshRange", {"from": start, "to": end}) as entry:
        result = await ...
        entry.detail = {"days": len(result.days)}

The entry is written when the block ends: outcome ``ok`` (or what the block set in ``entry.outcome``),
the error code of a :class:`~usage_gateway.errors.GatewayError` in lower case (``forbidden``,
``bad_user_input``…), ``cancelled`` when the request timed out, else ``error``. Only an error's code and
our own messages are kept, never an unexpected exception's text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from usage_gateway.datasources import audit
from usage_gateway.errors import GatewayError
from usage_gateway.resolvers.context import Context

log = structlog.get_logger("usage_gateway.audit")


@dataclass
class AuditEntry:
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)


def _failure(exc: BaseException) -> tuple[str, dict[str, Any]]:
    if isinstance(exc, GatewayError):
        return exc.code.lower(), {"error": exc.message}
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", {}
    return "error", {"error": type(exc).__name__}


async def write(ctx: Context, action: str, arguments: Mapping[str, Any], entry: AuditEntry) -> None:
    await audit.record(
        ctx.db,
        actor=ctx.viewer.id,
        action=action,
        arguments={**arguments, "requestId": ctx.request_id},
        outcome=entry.outcome,
        detail=entry.detail,
    )


@asynccontextmanager
async def audited(ctx: Context, action: str, arguments: Mapping[str, Any]) -> AsyncIterator[AuditEntry]:
    """Run the block and record it in the audit log (see the module docstring)."""
    entry = AuditEntry()
    try:
        yield entry
    except BaseException as exc:
        outcome, detail = _failure(exc)
        try:
            # Shielded: a request cancelled by its timeout still leaves its audit entry.
            await asyncio.shield(
                write(ctx, action, arguments, AuditEntry(outcome, {**entry.detail, **detail}))
            )
        except Exception:
            log.exception("audit.write_failed", action=action, actor=ctx.viewer.id, outcome=outcome)
        raise
    await write(ctx, action, arguments, entry)
