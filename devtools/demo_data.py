"""A seeded, realistic LiteLLM data set for the demo: users, virtual keys and ``LiteLLM_DailyUserSpend``
rows in the golden files' format (``tests/golden/litellm/README.md``), plus the gateway's own
directory rows (DESIGN §4) for the same people and keys.

The shape is what an admin sees on a real proxy: a few power users carry most of the spend, weekends are
quiet, usage grows gently, some models run on two providers, a provider has a bad day, and some spend
cannot be attributed (a service key without owner, requests without a key, keys the directory lacks).

A proxy with history also holds rows from older writers and odd corners of the schema (CONTRACT §5), so
a small share of the rows uses the rest of what ``LiteLLM_DailyUserSpend`` allows (:meth:`legacy`):
``user_id`` NULL beside ``''`` and set, on owned keys and on the owner-less one; ``model`` and
``custom_llm_provider`` NULL (before the upgrade) or ``''`` (after) on rejected requests; one key's model
at several endpoints and through MCP tools; one key's model on three providers on the same days; a
deleted key that had spend. They are drawn from a random stream of their own, so the clean rows are
drawn exactly as before.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import NormalDist
from typing import Any

from usage_gateway.devtools.demo_budgets import add_budgets
from usage_gateway.devtools.demo_catalog import (
    BY_NAME,
    DEPARTMENTS,
    FIRST_NAMES,
    LAST_NAMES,
    MODEL_GROUPS,
    MODELS,
    PREMIUM,
    PURPOSES,
    TOKENS,
    Model,
)
from usage_gateway.devtools.demo_tags import tag_rows
from usage_gateway.devtools.litellm_compat.store import MASTER_KEY

DAYS = 120
USERS = 200
KEYS = 600
EMAIL_DOMAIN = "acme.test"
UNMAPPED_KEY_SHARE = 0.05
# Legacy shapes (see the module docstring). Until UPGRADE_DAY the proxy wrote NULL for missing key
# columns (user_id, model, provider); from then on it writes ''.
UPGRADE_DAY = 45
NULL_USER_KEYS = 4  # owned keys with NULL-user rows before the upgrade (beside the owner-less key)
TRIAL_PROVIDER = "azure_ai"  # a third deployment of gpt-4o one key tries for two weeks
TRIAL_DAYS = range(DAYS - 30, DAYS - 16)
DELETED_DAY = 50  # the retired key's deletion (it was used until the day before)
TODAY_AS_OF = timedelta(hours=12)  # how much of today the data set holds (the demo's "now")
EXTRA_ENDPOINTS = ("/responses", "/v1/messages")
MCP_TOOLS = ("jira-create_issue", "github-search_code", "slack-post_message")
DELETED_TEAM = "team-innovation-labs"  # a team LiteLLM deleted; a key moved out of it on MOVE_DAY
MOVE_DAY = DAYS - 20
MASTER_KEY_HASH = hashlib.sha256(MASTER_KEY.encode()).hexdigest()
_KEY_CHARS = string.ascii_letters + string.digits + "-_"
_NO_SAVINGS = {
    "compression_saved_tokens": 0, "compression_savings_spend": 0.0, "prompt_caching_savings_spend": 0.0,
    "gateway_injected_caching_savings_spend": 0.0, "autorouter_savings_spend": 0.0,
}  # fmt: skip


@dataclass(frozen=True)
class DemoData:
    users: list[dict[str, Any]]  # LiteLLM_UserTable rows
    keys: list[dict[str, Any]]  # LiteLLM_VerificationToken rows plus raw_key
    rows: list[dict[str, Any]]  # LiteLLM_DailyUserSpend rows, every column
    directory_users: list[dict[str, Any]]  # the gateway's users table
    directory_keys: list[dict[str, Any]]  # the gateway's api_keys table
    tag_rows: list[dict[str, Any]] = field(default_factory=list)  # LiteLLM_DailyTagSpend rows
    teams: list[dict[str, Any]] = field(default_factory=list)  # LiteLLM_TeamTable rows (/team/list)
    # The gateway's teams table: LiteLLM's teams, and one it deleted (kept, with its alias).
    directory_teams: list[dict[str, Any]] = field(default_factory=list)
    # Keys that moved teams: token_hash, the team "before" valid_from, and team_id from then on (the key's
    # current team); the directory's api_key_teams history.
    team_moves: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class _User:
    user_id: str
    alias: str
    department: str
    team_id: str
    role: str  # LiteLLM's user_role
    weight: float
    p_active: float
    context: float  # prompt size relative to the median
    join_day: int
    created_at: datetime
    models: list[Model] = field(default_factory=list)
    keys: list[_Key] = field(default_factory=list)


@dataclass(eq=False)
class _Key:
    raw: str
    alias: str
    owner: _User | None
    team_id: str | None
    created_at: datetime
    first_day: int
    last_day: int  # inclusive; usage stops after it (revocation)
    share: float
    p_use: float
    uses: list[tuple[Model, tuple[str, ...], float]] = field(default_factory=list)
    blocked: bool = False
    deleted_at: datetime | None = None
    token: str = ""

    def __post_init__(self) -> None:
        self.token = hashlib.sha256(self.raw.encode()).hexdigest()


_RowsByKey = dict[str, list[dict[str, Any]]]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Generator:
    def __init__(self, seed: int, now: datetime) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.legacy_rng = random.Random(f"legacy-{seed}")
        self.today = now.astimezone(UTC).date()
        # Today is shown as of a fixed hour, not as of the wall clock, so a seed gives the same figures
        # on every run of the day (its rows may be stamped later than the moment the demo starts).
        self.now = datetime.combine(self.today, time(), UTC) + TODAY_AS_OF
        self.start = self.today - timedelta(days=DAYS - 1)
        self.start_moment = datetime.combine(self.start, time(), UTC)
        self.rows: list[dict[str, Any]] = []
        self.rotated: tuple[_Key, ...] = ()
        self.outage: dict[str, float] = {}  # today's failure rate by provider, during an incident

    # -- people and keys --------------------------------------------------------------------------

    def users(self) -> list[_User]:
        rng = self.rng
        names = rng.sample([(f, la) for f in FIRST_NAMES.split() for la in LAST_NAMES.split()], USERS)
        departments = rng.choices(DEPARTMENTS, weights=[d[1] for d in DEPARTMENTS], k=USERS)
        users = []
        for index, ((first, last), (department, _, intensity)) in enumerate(
            zip(names, departments, strict=True)
        ):
            role = "proxy_admin" if index < 3 else "proxy_admin_viewer" if index < 5 else "internal_user"
            weight = 0.0 if rng.random() < 0.07 else intensity  # 7 % signed up and never used it
            join_day = 0 if rng.random() < 0.8 else rng.randrange(1, DAYS - 5)
            tenure = rng.randint(1, 400) if join_day == 0 else 0
            created = self.start_moment + timedelta(days=join_day - tenure, seconds=-rng.randrange(86_400))
            users.append(_User(
                f"{first}.{last}".lower().replace("ü", "ue"), f"{first} {last}", department,
                f"team-{department.lower().replace(' ', '-')}", role, weight, 0.0, 1.0, join_day, created,
            ))  # fmt: skip
        # Lognormal activity at evenly spaced quantiles, so every seed gets the same heavy tail; the
        # heaviest users were there from the start (newcomers ramp up).
        active = [u for u in users if u.weight > 0]
        rng.shuffle(active)
        active.sort(key=lambda u: u.join_day > 0)
        count = len(active)
        for rank, user in enumerate(active):
            quantile = 1 - (rank + 0.5) / count
            user.weight *= math.exp(1.75 * NormalDist().inv_cdf(quantile))
            user.p_active = 0.2 + 0.72 * quantile**0.8
            user.context = 1.0 + 4.0 * quantile**12  # power users run agents with long contexts
            models = 1 + min(4, int(rng.expovariate(0.9) + 2 * quantile))
            user.models = self._pick_models(models, premium=quantile > 0.9)
        return users

    def _pick_models(self, count: int, *, premium: bool) -> list[Model]:
        chosen: list[Model] = []
        if premium:
            chosen.append(BY_NAME[self.rng.choice(PREMIUM)])
        while len(chosen) < count:
            model = self.rng.choices(MODELS, weights=[m.popularity for m in MODELS])[0]
            if model not in chosen:
                chosen.append(model)
        return chosen

    def _raw_key(self) -> str:
        return "sk-" + "".join(self.rng.choice(_KEY_CHARS) for _ in range(22))

    def keys(self, users: list[_User]) -> list[_Key]:
        rng = self.rng
        service = _Key(
            self._raw_key(), "svc-nightly-indexer", None, "team-operations",
            self.start_moment - timedelta(days=200), 0, DAYS - 1, 1.0, 1.0,
        )  # fmt: skip
        service.uses = [(BY_NAME["text-embedding-3-small"], ("openai",), 0.8)]
        service.uses.append((BY_NAME["gpt-4o-mini"], ("azure",), 0.2))
        keys = [service]
        counts = [1] * len(users)
        extra = rng.choices(
            range(len(users)), [1 + math.log1p(u.weight) for u in users], k=KEYS - 2 - len(users)
        )
        for index in extra:
            counts[index] += 1
        for user, count in zip(users, counts, strict=True):
            for number in range(count):
                late = number > 0 and rng.random() < 0.3
                first_day = rng.randrange(user.join_day, DAYS) if late else user.join_day
                purpose = PURPOSES[number % 11] + (str(number // 11 + 1) if number >= 11 else "")
                start = self.start_moment + timedelta(days=first_day - 1, hours=rng.randrange(20))
                share = rng.lognormvariate(0.0, 0.8) * (2.0 if number == 0 else 1.0)
                key = _Key(
                    self._raw_key(), f"{user.user_id}-{purpose}", user,
                    user.team_id if rng.random() < 0.7 else None, max(user.created_at, start), first_day,
                    DAYS - 1, share, rng.uniform(0.45, 1.0),
                )  # fmt: skip
                count = rng.randint(1, min(3, len(user.models))) if user.models else 0
                models = rng.sample(user.models, count)
                key.uses = [(m, self._providers(m), rng.lognormvariate(0.0, 0.7)) for m in models]
                user.keys.append(key)
                keys.append(key)
        # One key of a steady user is revoked 40 days ago and replaced by a new one the next day.
        steady = sorted((u for u in users if u.weight > 0 and u.join_day == 0), key=lambda u: u.weight)
        owner = steady[len(steady) // 2]
        old = owner.keys[0]
        old.blocked, old.last_day = True, DAYS - 41
        new = _Key(
            self._raw_key(), f"{old.alias}-rotated", owner, old.team_id,
            self.start_moment + timedelta(days=DAYS - 40, hours=9), DAYS - 40, DAYS - 1, old.share, old.p_use,
        )  # fmt: skip
        new.uses = list(old.uses)
        owner.keys.append(new)
        keys.append(new)
        self.rotated = (old, new)
        self._cover_catalog(keys)
        return keys

    def _cover_catalog(self, keys: list[_Key]) -> None:
        """Give every model × provider pair of the catalog to at least one active key."""
        used = {
            (model.name, provider)
            for key in keys
            for model, providers, _ in key.uses
            for provider in providers
        }
        candidates = [k for k in keys[1:] if k.owner and k.owner.weight > 0 and k.first_day < DAYS // 2]
        for model in MODELS:
            for provider in model.providers:
                if (model.name, provider) not in used:
                    self.rng.choice(candidates).uses.append((model, (provider,), self.rng.uniform(0.05, 0.3)))

    def _providers(self, model: Model) -> tuple[str, ...]:
        if len(model.providers) == 1:
            return model.providers
        draw = self.rng.random()
        # A router load-balancing one model over two deployments sends a key's traffic to both.
        return model.providers[:1] if draw < 0.55 else model.providers[1:] if draw < 0.75 else model.providers

    # -- daily rows -------------------------------------------------------------------------------

    def usage(self, users: list[_User], keys: list[_Key]) -> None:
        rng = self.rng
        incidents = (
            (rng.randrange(10, DAYS - 2), "azure", 0.35),
            (rng.randrange(10, DAYS - 2), "vertex_ai", 0.25),
        )
        partial = TODAY_AS_OF / timedelta(days=1)
        for day in range(DAYS):
            current = self.start + timedelta(days=day)
            weekend = current.weekday() >= 5
            scale = (1 + 0.35 * day / DAYS) * (partial if day == DAYS - 1 else 1.0)
            self.outage = {provider: rate for d, provider, rate in incidents if d == day}
            for user in users:
                p_active = (
                    user.p_active * (0.4 if weekend else 1.0) * (partial**0.5 if day == DAYS - 1 else 1)
                )
                if day < user.join_day or rng.random() >= p_active:
                    continue
                volume = 18 * user.weight * scale * (0.7 if weekend else 1.0) * rng.lognormvariate(0.0, 0.4)
                live = [k for k in user.keys if k.first_day <= day <= k.last_day and k.uses]
                used = [k for k in live if rng.random() < k.p_use] or live[:1]
                total_share = sum(k.share for k in used)
                for key in used:
                    self._key_day(key, user.user_id, current, volume * key.share / total_share, user.context)
            self._key_day(keys[0], "", current, 900 * scale * rng.uniform(0.8, 1.2))
            if rng.random() < 0.4:  # requests that reached LiteLLM without a virtual key
                self._row("", "", current, BY_NAME["gpt-4o-mini"], "openai", rng.uniform(3, 60))
            if not weekend and rng.random() < 0.3:  # an admin trying models with the master key
                model = rng.choice(MODELS[:3])
                volume = rng.uniform(2, 25)
                self._row("default_user_id", MASTER_KEY_HASH, current, model, model.providers[0], volume)

    def _key_day(
        self, key: _Key, user_id: str, current: date, volume: float, context: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        rng = rng or self.rng
        uses = [u for u in key.uses if len(key.uses) == 1 or rng.random() < 0.85] or key.uses[:1]
        total = sum(weight for _, _, weight in uses)
        for model, providers, weight in uses:
            requests = volume * weight / total * rng.lognormvariate(0.0, 0.3)
            if len(providers) == 1:
                self._row(user_id, key.token, current, model, providers[0], requests, context, rng=rng)
            else:
                split = rng.uniform(0.55, 0.85)
                for provider, part in zip(providers, (split, 1 - split), strict=True):
                    self._row(user_id, key.token, current, model, provider, requests * part, context, rng=rng)

    def _row(
        self, user_id: str | None, api_key: str, current: date, model: Model, provider: str, volume: float,
        context: float = 1.0, *, rng: random.Random | None = None, endpoint: str | None = None,
        tool: str = "",
    ) -> None:  # fmt: skip
        rng = rng or self.rng
        requests = max(1, round(volume))
        rate = self.outage.get(provider, 0.012 if model.kind == "reasoning" else 0.004)
        if requests <= 3 and rng.random() < 0.02:
            failed = requests  # a misconfigured client: every call rejected, nothing billed
        elif requests <= 30:
            failed = sum(rng.random() < rate for _ in range(requests))
        else:
            failed = min(requests, max(0, round(rng.gauss(requests * rate, math.sqrt(requests * rate)))))
        ok = requests - failed
        median_prompt, median_completion = TOKENS[model.kind]
        prompt = round(ok * median_prompt * context * rng.lognormvariate(0.0, 0.45))
        completion = round(ok * median_completion * rng.lognormvariate(0.0, 0.45))
        cache_read = cache_creation = 0
        if model.cache_read_price is not None and prompt and rng.random() < 0.45:
            cache_read = round(prompt * rng.uniform(0.1, 0.6))
            if provider in ("anthropic", "bedrock"):
                cache_creation = round(prompt * rng.uniform(0.02, 0.1))
        uncached = prompt - cache_read - cache_creation
        spend = (
            uncached * model.input_price
            + cache_read * (model.cache_read_price or 0.0)
            + cache_creation * model.input_price * 1.25
            + completion * model.output_price
        ) / 1e6
        day_start = datetime.combine(current, time(), UTC)
        day_end = min(day_start + timedelta(days=1), self.now)
        created = day_start + (day_end - day_start) * rng.uniform(0.0, 0.4)
        updated = created + (day_end - created) * rng.uniform(0.3, 1.0)
        endpoint = endpoint or ("/embeddings" if model.kind == "embedding" else "/chat/completions")
        self.rows.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "user_id": user_id,
            "date": current.isoformat(), "api_key": api_key, "model": model.name,
            "model_group": MODEL_GROUPS.get(model.name, model.name),
            "custom_llm_provider": provider, "mcp_namespaced_tool_name": tool, "endpoint": endpoint,
            "prompt_tokens": prompt, "completion_tokens": completion, "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_creation, **_NO_SAVINGS, "spend": spend,
            "api_requests": requests, "successful_requests": ok, "failed_requests": failed,
            "total_response_time_ms": round(requests * model.latency_ms * rng.lognormvariate(0.0, 0.3)),
            "timed_requests": requests, "created_at": _stamp(created), "updated_at": _stamp(updated),
        })  # fmt: skip

    # -- legacy shapes ------------------------------------------------------------------------------

    def legacy(self, users: list[_User], keys: list[_Key]) -> _Key:
        """Add the rows of a proxy with history (module docstring) to the clean ones; returns the
        deleted key. Draws only from ``legacy_rng``, so the clean rows are drawn exactly as before."""
        rng = self.legacy_rng
        self.outage = {}
        clean = list(self.rows)
        upgrade = (self.start + timedelta(days=UPGRADE_DAY)).isoformat()
        by_key: _RowsByKey = defaultdict(list)
        for row in clean:
            by_key[row["api_key"]].append(row)
        early = [k for k in keys[1:] if k.owner and any(r["date"] < upgrade for r in by_key[k.token])]
        # Keys routing a model to two providers are the ones whose NULL-user rows are hard to place.
        split = [k for k in early if any(len(providers) > 1 for _, providers, _ in k.uses)]
        null_user = rng.sample(split, min(len(split), NULL_USER_KEYS - 1))
        null_user += rng.sample([k for k in early if k not in null_user], 1)
        for key in [keys[0], *null_user]:  # the old writer's rows: user_id NULL
            for row in by_key[key.token]:
                if row["date"] < upgrade and rng.random() < 0.5:
                    self._null_user_twin(row, rng.uniform(0.1, 0.5), rng)
        for key in null_user[:2]:  # requests rejected before routing: no model, no provider
            for day in sorted({row["date"] for row in by_key[key.token]}):
                if rng.random() < 0.2:
                    if day < upgrade:
                        self._rejected(None, key.token, date.fromisoformat(day), None, rng)
                    else:
                        owner = key.owner.user_id if key.owner else ""
                        self._rejected(owner, key.token, date.fromisoformat(day), "", rng)
        # A key shared without an owner at first: LiteLLM wrote '' for its user until it was assigned.
        shared = rng.choice([k for k in early if k not in null_user])
        assigned = sorted({row["date"] for row in by_key[shared.token]})[:10][-1]
        for row in by_key[shared.token]:
            if row["date"] <= assigned:
                row["user_id"] = ""
        self._endpoints(keys, by_key, rng)
        self._trial(keys, by_key, rng)
        return self._retired(users, rng)

    def _null_user_twin(self, row: dict[str, Any], share: float, rng: random.Random) -> None:
        """Another row of the same key, model, provider and endpoint, with ``user_id`` NULL."""
        self._row(
            None, row["api_key"], date.fromisoformat(row["date"]), BY_NAME[row["model"]],
            row["custom_llm_provider"], row["api_requests"] * share, rng=rng, endpoint=row["endpoint"],
            tool=row["mcp_namespaced_tool_name"],
        )  # fmt: skip

    def _rejected(
        self, user_id: str | None, api_key: str, current: date, empty: str | None, rng: random.Random
    ) -> None:
        """A few requests rejected before routing: model, group and provider are ``empty`` (NULL from the
        old writer, '' from the new one), nothing billed."""
        requests = rng.randint(1, 6)
        moment = datetime.combine(current, time(), UTC) + timedelta(hours=rng.uniform(0, 9))
        self.rows.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "user_id": user_id,
            "date": current.isoformat(), "api_key": api_key, "model": empty, "model_group": empty,
            "custom_llm_provider": empty, "mcp_namespaced_tool_name": "", "endpoint": "/chat/completions",
            "prompt_tokens": 0, "completion_tokens": 0, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0, **_NO_SAVINGS, "spend": 0.0, "api_requests": requests,
            "successful_requests": 0, "failed_requests": requests,
            "total_response_time_ms": requests * rng.randint(20, 80), "timed_requests": requests,
            "created_at": _stamp(min(moment, self.now)), "updated_at": _stamp(min(moment, self.now)),
        })  # fmt: skip

    def _endpoints(self, keys: list[_Key], by_key: _RowsByKey, rng: random.Random) -> None:
        """The busiest OpenAI chat key also calls the Responses and Messages APIs and MCP tools: the same
        key, model and provider at several endpoints."""

        def chat_rows(key: _Key) -> list[dict[str, Any]]:
            return [
                row for row in by_key[key.token]
                if row["custom_llm_provider"] == "openai" and row["endpoint"] == "/chat/completions"
            ]  # fmt: skip

        busiest = max(keys[1:], key=lambda k: sum(row["api_requests"] for row in chat_rows(k)))
        for row in chat_rows(busiest):
            for endpoint, chance in zip(EXTRA_ENDPOINTS, (0.6, 0.3), strict=True):
                if rng.random() < chance:
                    self._row(
                        row["user_id"], row["api_key"], date.fromisoformat(row["date"]),
                        BY_NAME[row["model"]], "openai", row["api_requests"] * rng.uniform(0.1, 0.6), rng=rng,
                        endpoint=endpoint,
                    )  # fmt: skip
            if rng.random() < 0.3:
                self._row(
                    row["user_id"], row["api_key"], date.fromisoformat(row["date"]), BY_NAME[row["model"]],
                    "openai", rng.uniform(1, 12), rng=rng, endpoint="/mcp", tool=rng.choice(MCP_TOOLS),
                )  # fmt: skip

    def _trial(self, keys: list[_Key], by_key: _RowsByKey, rng: random.Random) -> None:
        """One gpt-4o key sends the model to every deployment, a third one included, for two weeks."""
        model = BY_NAME["gpt-4o"]
        trial = {(self.start + timedelta(days=day)).isoformat() for day in TRIAL_DAYS}
        candidates = [
            k for k in keys[1:] if k.owner and any(row["model"] == model.name and row["date"] in trial
                                                   for row in by_key[k.token])
        ]  # fmt: skip
        if not candidates:
            return
        key = rng.choice(candidates)
        days: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in by_key[key.token]:
            if row["model"] == model.name and row["date"] in trial:
                days[row["date"]].append(row)
        for day, rows in sorted(days.items()):
            present = {row["custom_llm_provider"] for row in rows}
            for provider in (*model.providers, TRIAL_PROVIDER):
                if provider not in present:
                    self._row(
                        rows[0]["user_id"], key.token, date.fromisoformat(day), model, provider,
                        rows[0]["api_requests"] * rng.uniform(0.1, 0.4), rng=rng,
                    )  # fmt: skip

    def _retired(self, users: list[_User], rng: random.Random) -> _Key:
        """A steady user's old key, used until it was deleted (LiteLLM keeps it only in its archive of
        deleted keys; its rows stay)."""
        steady = sorted((u for u in users if u.weight > 0 and u.join_day == 0), key=lambda u: u.weight)
        owner = rng.choice(steady[len(steady) // 2 :])
        raw = "sk-" + "".join(rng.choice(_KEY_CHARS) for _ in range(22))
        key = _Key(
            raw, f"{owner.user_id}-retired", owner, None, self.start_moment - timedelta(days=90), 0,
            DELETED_DAY - 1, 1.0, 0.8,
        )  # fmt: skip
        key.uses = [(model, self._deployments(model, rng), 1.0) for model in owner.models[:2]]
        key.deleted_at = self.start_moment + timedelta(days=DELETED_DAY, hours=11)
        for day in range(DELETED_DAY):
            current = self.start + timedelta(days=day)
            if rng.random() < key.p_use * (0.4 if current.weekday() >= 5 else 1.0):
                volume = 6 * owner.weight * rng.lognormvariate(0.0, 0.4)
                self._key_day(key, owner.user_id, current, volume, owner.context, rng=rng)
        return key

    @staticmethod
    def _deployments(model: Model, rng: random.Random) -> tuple[str, ...]:
        return model.providers if rng.random() < 0.5 else model.providers[:1]

    # -- output -----------------------------------------------------------------------------------

    def build(self) -> DemoData:
        users = self.users()
        keys = self.keys(users)
        self.usage(users, keys)
        retired = self.legacy(users, keys)
        spend_by_user: dict[str | None, float] = defaultdict(float)
        spend_by_key: dict[str, float] = defaultdict(float)
        for row in self.rows:
            spend_by_user[row["user_id"]] += row["spend"]
            spend_by_key[row["api_key"]] += row["spend"]
        used = [k for k in keys[1:] if spend_by_key[k.token] > 0 and k not in self.rotated]
        unmapped = {id(k) for k in self.rng.sample(used, round(UNMAPPED_KEY_SHARE * len(keys)))}
        keys = [*keys, retired]
        litellm_keys = [self._litellm_key(k, spend_by_key[k.token]) for k in keys]
        directory_keys = [
            self._directory_key(number, key) for number, key in enumerate(keys, 1) if id(key) not in unmapped
        ]
        teams, directory_teams, team_moves = self._teams(directory_keys)
        litellm_users = [self._litellm_user(u, spend_by_user[u.user_id]) for u in users]
        add_budgets(litellm_users, litellm_keys, teams, self.rows, self.seed, self.today)
        return DemoData(
            users=litellm_users,
            keys=litellm_keys,
            rows=self.rows,
            directory_users=[self._directory_user(u) for u in users],
            directory_keys=directory_keys,
            tag_rows=tag_rows(self.rows, self.seed),
            teams=teams,
            directory_teams=directory_teams,
            team_moves=team_moves,
        )

    def _teams(
        self, directory_keys: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """One LiteLLM team per department; and "Innovation Labs", which LiteLLM has deleted: the busiest
        owned directory key was in it until MOVE_DAY, then moved to its owner's department team. Drawn
        from no random source, so the rest of the data set is the same as without teams."""
        created = _stamp(self.start_moment - timedelta(days=30))
        teams = [
            {"team_id": f"team-{name.lower().replace(' ', '-')}", "team_alias": name, "created_at": created,
             "updated_at": created, "spend": 0.0}
            for name, _, _ in DEPARTMENTS
        ]  # fmt: skip
        requests: dict[str, int] = defaultdict(int)
        for row in self.rows:
            requests[row["api_key"]] += row["api_requests"]
        movable = [k for k in directory_keys if k["user_id"] and k["team_id"] and k["revoked_at"] is None]
        moved = max(movable, key=lambda k: (requests[k["token_hash"]], k["token_hash"]))
        deleted_at = self.start_moment + timedelta(days=MOVE_DAY)
        directory_teams = [
            *({"id": t["team_id"], "alias": t["team_alias"], "deleted_at": None} for t in teams),
            {"id": DELETED_TEAM, "alias": "Innovation Labs", "deleted_at": deleted_at},
        ]
        move = {"token_hash": moved["token_hash"], "before": DELETED_TEAM,
                "valid_from": self.start + timedelta(days=MOVE_DAY), "team_id": moved["team_id"]}  # fmt: skip
        return teams, directory_teams, [move]

    def _litellm_user(self, user: _User, spend: float) -> dict[str, Any]:
        return {
            "user_id": user.user_id, "user_alias": user.alias, "user_email": f"{user.user_id}@{EMAIL_DOMAIN}",
            "user_role": user.role, "teams": [user.team_id], "team_id": None, "organization_id": None,
            "spend": spend, "max_budget": None, "models": [], "metadata": {"department": user.department},
            "created_at": _stamp(user.created_at), "updated_at": _stamp(user.created_at + timedelta(days=1)),
        }  # fmt: skip

    def _revoked_at(self, key: _Key) -> datetime | None:
        if key.deleted_at is not None:
            return key.deleted_at
        return self.start_moment + timedelta(days=key.last_day + 1, hours=10) if key.blocked else None

    def _litellm_key(self, key: _Key, spend: float) -> dict[str, Any]:
        return {
            "raw_key": key.raw, "token": key.token, "key_name": f"sk-...{key.raw[-4:]}",
            "key_alias": key.alias, "user_id": key.owner.user_id if key.owner else None,
            "team_id": key.team_id, "organization_id": None, "spend": spend, "max_budget": None,
            "budget_duration": None, "expires": None, "models": [], "aliases": {}, "config": {},
            "permissions": {}, "metadata": {}, "blocked": True if key.blocked else None,
            "tpm_limit": None, "rpm_limit": None, "created_at": _stamp(key.created_at),
            "created_by": "default_user_id", "updated_at": _stamp(self._revoked_at(key) or key.created_at),
            "updated_by": "default_user_id", "last_active": None,
            **({} if key.deleted_at is None else {
                "deleted": True, "deleted_at": _stamp(key.deleted_at), "deleted_by": "default_user_id",
                "deleted_by_api_key": MASTER_KEY_HASH,
            }),
        }  # fmt: skip

    def _directory_user(self, user: _User) -> dict[str, Any]:
        role = {"proxy_admin": "admin", "proxy_admin_viewer": "adminReadonly"}.get(user.role, "user")
        return {
            "id": user.user_id, "username": user.user_id, "email": f"{user.user_id}@{EMAIL_DOMAIN}",
            "role": role, "department": user.department, "created_at": user.created_at,
        }  # fmt: skip

    def _directory_key(self, number: int, key: _Key) -> dict[str, Any]:
        owner = key.owner.user_id if key.owner else None
        return {
            "id": f"key-{number:04d}", "user_id": owner,
            "name": key.alias.split("-", 1)[-1].replace("-", " ").capitalize(), "key_alias": key.alias,
            "token_hash": key.token, "litellm_user_id": owner, "team_id": key.team_id,
            "created_at": key.created_at, "revoked_at": self._revoked_at(key),
        }  # fmt: skip


def generate(seed: int = 7, *, now: datetime | None = None) -> DemoData:
    """The demo data set for ``seed``, 120 days ending on ``now``'s UTC day, which is partial: as of
    :data:`TODAY_AS_OF` after midnight UTC, whatever the time of ``now``. Same seed and day, same data."""
    return _Generator(seed, now or datetime.now(UTC)).build()
