"""Directory types: users, API keys and teams."""

from __future__ import annotations

import strawberry

from usage_gateway.datasources.directory.lookups import ApiKeyRecord, TeamRecord, UserRecord


@strawberry.type(description="A user: from the directory, or a pseudo-user with only an `id`.")
class User:
    id: strawberry.ID
    username: str | None = None
    email: str | None = None
    role: str | None = None
    department: str | None = None

    @classmethod
    def of(cls, record: UserRecord) -> User:
        return cls(
            id=strawberry.ID(record.id),
            username=record.username,
            email=record.email,
            role=record.role,
            department=record.department,
        )

    @classmethod
    def maybe(cls, record: UserRecord | None) -> User | None:
        return None if record is None else cls.of(record)


@strawberry.type(description="An API key: from the directory, or a LiteLLM key bucket it does not know.")
class ApiKey:
    id: strawberry.ID
    name: str | None
    key_alias: str | None
    user: User | None
    revoked: bool

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKey:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            key_alias=record.key_alias,
            user=User.maybe(record.user),
            revoked=record.revoked,
        )

    @classmethod
    def bucket(cls, bucket: str) -> ApiKey:
        return cls(id=strawberry.ID(bucket), name=None, key_alias=None, user=None, revoked=False)


@strawberry.type(description="A LiteLLM team (from its team list), or `no-team`.")
class Team:
    id: strawberry.ID
    alias: str | None = strawberry.field(
        default=None, description="LiteLLM's alias; kept once LiteLLM deletes the team. Null for `no-team`."
    )
    deleted: bool = strawberry.field(default=False, description="LiteLLM no longer lists the team.")

    @classmethod
    def of(cls, team_id: str, record: TeamRecord | None) -> Team:
        if record is None:
            return cls(id=strawberry.ID(team_id))
        return cls(id=strawberry.ID(team_id), alias=record.alias, deleted=record.deleted)
