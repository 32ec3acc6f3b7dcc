"""Mutations and exports: not built yet (the next issue); each answers a clear error meanwhile."""

from __future__ import annotations

from typing import NoReturn

from datasources.errors import GatewayError
from resolvers.context import Context


class NotImplementedYet(GatewayError):
    code = "NOT_IMPLEMENTED"


def _pending(what: str) -> NoReturn:
    raise NotImplementedYet(f"{what} is not available in this version of the gateway")


async def refresh_today(ctx: Context) -> NoReturn:
    _pending("refreshToday")


async def refresh_range(ctx: Context) -> NoReturn:
    _pending("refreshRange")


async def export_usage(ctx: Context) -> NoReturn:
    _pending("exportUsage")


async def sync_directory(ctx: Context) -> NoReturn:
    _pending("syncDirectory")


async def export(ctx: Context, export_id: str) -> NoReturn:
    _pending("export")
