"""The root query: ``usage``, ``filterOptions``, ``viewer``, ``export``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from usage_gateway.datasources.facts.aggregates import Dimension
from usage_gateway.resolvers import mutations, options
from usage_gateway.resolvers import usage as resolve
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.options import OptionsRequest
from usage_gateway.schema.directory import ApiKey, Team, User
from usage_gateway.schema.enums import Role
from usage_gateway.schema.exports import Export
from usage_gateway.schema.fields import described
from usage_gateway.schema.inputs import UsageFilter
from usage_gateway.schema.usage import Usage


@strawberry.type(description="What a filter can choose from: the values seen in a range.")
class FilterOptions:
    _request: strawberry.Private[OptionsRequest]

    @described("Users with usage in the range; pseudo-users carry only their `id`.")
    async def users(self, info: Info[Context, None]) -> list[User]:
        found = await options.users(info.context, self._request)
        return [User.of(record) if record else User(id=strawberry.ID(user_id)) for user_id, record in found]

    @described("Keys with usage in the range; buckets outside the directory by bucket id.")
    async def api_keys(self, info: Info[Context, None]) -> list[ApiKey]:
        found = await options.api_keys(info.context, self._request)
        return [ApiKey.of(record) if record else ApiKey.bucket(bucket) for bucket, record in found]

    @described("Teams with usage in the range, `no-team` included when some usage had no team.")
    async def teams(self, info: Info[Context, None]) -> list[Team]:
        found = await options.teams(info.context, self._request)
        return [Team.of(team_id, record) for team_id, record in found]

    @strawberry.field
    async def models(self, info: Info[Context, None]) -> list[str]:
        return await options.values(info.context, self._request, Dimension.MODEL)

    @strawberry.field
    async def providers(self, info: Info[Context, None]) -> list[str]:
        return await options.values(info.context, self._request, Dimension.PROVIDER)

    @described(
        "LiteLLM tags with usage in the range (LiteLLM's tag activity, read when this field is asked for)."
    )
    async def tags(self, info: Info[Context, None]) -> list[str]:
        return await options.tags(info.context, self._request)


@strawberry.type
class Viewer:
    id: strawberry.ID
    roles: list[Role]


@strawberry.type
class Query:
    @described("Usage under a filter; each field is computed only when selected.")
    async def usage(self, info: Info[Context, None], filter: UsageFilter) -> Usage:
        return Usage.of(await resolve.usage(info.context, filter.requested()))

    @strawberry.field
    async def filter_options(
        self,
        info: Info[Context, None],
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        user_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description="Chosen users: `apiKeys` lists only the keys they used."),
        ] = None,
        team_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description="Chosen teams: `apiKeys` lists only the keys used in them."),
        ] = None,
    ) -> FilterOptions:
        found = await options.filter_options(info.context, from_, to, user_ids, team_ids)
        return FilterOptions(_request=found)

    @strawberry.field
    def viewer(self, info: Info[Context, None]) -> Viewer:
        viewer = info.context.viewer
        return Viewer(
            id=strawberry.ID(viewer.id),
            roles=sorted((Role(role) for role in viewer.roles), key=list(Role).index),
        )

    @strawberry.field
    async def export(self, info: Info[Context, None], id: strawberry.ID) -> Export | None:
        record = await mutations.export(info.context, id)
        if record is None:
            return None
        return Export.from_record(record, mutations.download_url(info.context, record))
