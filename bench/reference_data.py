"""The reference data set of DESIGN §10: 10,000 users, 30,000 keys, 150 models, 8 providers, 365 days.

Deterministic from a seed, and generated day by day (each day has its own random stream), so a bench can
ask for any subset of days without generating the rest. Usage is heavy-tailed (a lognormal weight per
user: a few percent of users make most of the spend), quiet on weekends, and grows over the year (later
joiners, rising volume). Some models run on two providers and some keys spread one model over both.

Two outputs:
- LiteLLM ``LiteLLM_DailyUserSpend`` rows (:meth:`ReferenceData.litellm_rows`) for the LiteLLM-compatible
  server, for cold benchmarks;
- the gateway's own tables filled directly with COPY (:func:`fill_gateway`): ``users``, ``api_keys``,
  ``litellm_keys``, ``usage_facts`` and ``usage_days`` (closed, verified), for warm benchmarks.

Every row has one endpoint, so a LiteLLM row is exactly one gateway fact.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import NormalDist
from typing import Any

import psycopg

PROVIDERS = ("openai", "anthropic", "azure", "bedrock", "vertex_ai", "mistral", "groq", "together_ai")
_FAMILIES = {
    "openai": ("gpt-4o", "gpt-4.1", "o3", "gpt-5", "text-embedding-3"),
    "anthropic": ("claude-sonnet", "claude-haiku", "claude-opus"),
    "azure": ("azure-gpt-4o", "azure-o4"),
    "bedrock": ("titan-text", "nova-pro", "nova-lite"),
    "vertex_ai": ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-embedding"),
    "mistral": ("mistral-large", "codestral", "ministral"),
    "groq": ("llama-3.3-70b", "llama-4-scout"),
    "together_ai": ("qwen3-235b", "deepseek-v3", "kimi-k2"),
}
# The second deployment a model can run on (a router load-balancing one model over two providers).
_SECOND = {"openai": "azure", "anthropic": "bedrock", "vertex_ai": "together_ai", "mistral": "bedrock"}
_NO_SAVINGS = {
    "compression_saved_tokens": 0, "compression_savings_spend": 0.0, "prompt_caching_savings_spend": 0.0,
    "gateway_injected_caching_savings_spend": 0.0, "autorouter_savings_spend": 0.0,
}  # fmt: skip
FACT_COLUMNS = (
    "date, api_key, litellm_user_id, model, provider, user_id, spend, prompt_tokens, completion_tokens,"
    " cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,"
    " successful_requests, failed_requests, total_response_time_ms, timed_requests"
)


@dataclass(frozen=True)
class Scale:
    users: int = 10_000
    keys: int = 30_000
    models: int = 150
    days: int = 365
    last_day: date = date(2026, 10, 31)
    seed: int = 2026

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)

    @classmethod
    def smoke(cls) -> Scale:
        """A few seconds' worth, for CI: the same code paths at a hundredth of the size."""
        return cls(users=100, keys=300, models=20, days=14)


@dataclass(frozen=True)
class Model:
    name: str
    providers: tuple[str, ...]
    popularity: float
    input_price: float  # $ per million tokens
    output_price: float
    embedding: bool


@dataclass(eq=False)
class Key:
    token: str
    alias: str
    owner: User
    # (model, providers this key's traffic for it goes to, share of the key's volume)
    uses: list[tuple[Model, tuple[str, ...], float]]
    share: float
    p_use: float


@dataclass(eq=False)
class User:
    user_id: str
    weight: float
    p_active: float
    join_day: int
    keys: list[Key] = field(default_factory=list)


class ReferenceData:
    def __init__(self, scale: Scale = Scale()) -> None:
        self.scale = scale
        rng = random.Random(scale.seed)
        self.models = _catalog(rng, scale.models)
        self.users = _users(rng, scale)
        self.keys = _keys(rng, scale, self.users, self.models)

    def day(self, index: int) -> date:
        return self.scale.first_day + timedelta(days=index)

    def cells(self, index: int) -> Iterator[tuple[Key, Model, str, dict[str, Any]]]:
        """One day's usage: (key, model, provider, metrics) per LiteLLM row, from the day's own stream."""
        scale = self.scale
        rng = random.Random(scale.seed * 1_000_003 + index)
        weekend = self.day(index).weekday() >= 5
        growth = 0.6 + 0.6 * index / max(1, scale.days - 1)
        for user in self.users:
            if index < user.join_day or rng.random() >= user.p_active * (0.35 if weekend else 1.0):
                continue
            volume = 14 * user.weight * growth * (0.6 if weekend else 1.0) * rng.lognormvariate(0.0, 0.4)
            used = [k for k in user.keys if rng.random() < k.p_use] or user.keys[:1]
            key_total = sum(k.share for k in used)
            for key in used:
                uses = [u for u in key.uses if rng.random() < 0.85] or key.uses[:1]
                use_total = sum(weight for _, _, weight in uses)
                for model, providers, weight in uses:
                    requests = volume * key.share / key_total * weight / use_total
                    if len(providers) == 1:
                        yield key, model, providers[0], _metrics(rng, model, requests)
                    else:
                        split = rng.uniform(0.55, 0.85)
                        yield key, model, providers[0], _metrics(rng, model, requests * split)
                        yield key, model, providers[1], _metrics(rng, model, requests * (1 - split))

    def litellm_rows(self, indexes: Sequence[int]) -> list[dict[str, Any]]:
        """``LiteLLM_DailyUserSpend`` rows of these days, every column (the golden files' format)."""
        rows = []
        for index in indexes:
            day = self.day(index)
            stamp = datetime.combine(day, time(23, 59), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rng = random.Random(-index - 1)
            for key, model, provider, metrics in self.cells(index):
                rows.append({
                    "id": f"{rng.getrandbits(128):032x}", "user_id": key.owner.user_id,
                    "date": day.isoformat(), "api_key": key.token, "model": model.name,
                    "model_group": model.name, "custom_llm_provider": provider,
                    "mcp_namespaced_tool_name": "",
                    "endpoint": "/embeddings" if model.embedding else "/chat/completions",
                    **metrics, **_NO_SAVINGS, "created_at": stamp, "updated_at": stamp,
                })  # fmt: skip
        return rows

    def litellm_keys(self) -> list[dict[str, Any]]:
        return [
            {"token": k.token, "key_alias": k.alias, "user_id": k.owner.user_id, "key_name": k.alias}
            for k in self.keys
        ]

    def litellm_users(self) -> list[dict[str, Any]]:
        return [
            {"user_id": u.user_id, "user_email": f"{u.user_id}@reference.test", "user_alias": u.user_id}
            for u in self.users
        ]


def _catalog(rng: random.Random, count: int) -> list[Model]:
    families = [(provider, family) for provider, names in _FAMILIES.items() for family in names]
    models = []
    for rank in range(count):
        provider, family = families[rank % len(families)]
        version = rank // len(families)
        name = family if version == 0 else f"{family}-{version + 1:02d}"
        second = _SECOND.get(provider)
        on_two = second is not None and rank % 10 == 3  # one model in ten also runs elsewhere
        embedding = "embedding" in family
        input_price = 0.02 if embedding else round(rng.lognormvariate(0.3, 1.1), 3)
        models.append(
            Model(
                name=name,
                providers=(provider, second) if on_two and second else (provider,),
                popularity=1 / (rank + 1) ** 1.1,
                input_price=input_price,
                output_price=0.0 if embedding else round(input_price * rng.uniform(3, 5), 3),
                embedding=embedding,
            )
        )
    return models


def _users(rng: random.Random, scale: Scale) -> list[User]:
    users = []
    for index in range(scale.users):
        # Evenly spaced quantiles of a lognormal: every seed gets the same heavy tail.
        quantile = 1 - (index + 0.5) / scale.users
        joins_late = rng.random() < 0.3  # growth: a third of the users arrive during the year
        users.append(
            User(
                user_id=f"user-{index:05d}",
                weight=math.exp(1.9 * NormalDist().inv_cdf(quantile)),
                p_active=0.03 + 0.6 * quantile**0.8,
                join_day=rng.randrange(scale.days) if joins_late else 0,
            )
        )
    rng.shuffle(users)
    return users


def _keys(rng: random.Random, scale: Scale, users: list[User], models: list[Model]) -> list[Key]:
    owners = list(users) + rng.choices(
        users, weights=[1 + math.log1p(u.weight) for u in users], k=scale.keys - len(users)
    )
    popularity = [m.popularity for m in models]
    keys = []
    for number, owner in enumerate(owners):
        chosen: list[Model] = []
        for model in rng.choices(models, weights=popularity, k=rng.choice((1, 1, 1, 2, 2, 3))):
            if model not in chosen:
                chosen.append(model)
        uses = [(m, _deployments(rng, m), rng.lognormvariate(0.0, 0.7)) for m in chosen]
        token = hashlib.sha256(f"sk-reference-{scale.seed}-{number}".encode()).hexdigest()
        key = Key(token, f"{owner.user_id}-key-{len(owner.keys) + 1}", owner, uses,
                  share=rng.lognormvariate(0.0, 0.8), p_use=rng.uniform(0.3, 1.0))  # fmt: skip
        owner.keys.append(key)
        keys.append(key)
    return keys


def _deployments(rng: random.Random, model: Model) -> tuple[str, ...]:
    if len(model.providers) == 1:
        return model.providers
    draw = rng.random()
    return model.providers[:1] if draw < 0.5 else model.providers[1:] if draw < 0.7 else model.providers


def _metrics(rng: random.Random, model: Model, volume: float) -> dict[str, Any]:
    requests = max(1, round(volume))
    failed = sum(1 for _ in range(min(requests, 20)) if rng.random() < 0.01)
    ok = requests - failed
    prompt = round(ok * (900 if model.embedding else 2400) * rng.uniform(0.5, 1.6))
    completion = 0 if model.embedding else round(ok * 450 * rng.uniform(0.5, 1.6))
    cache_read = round(prompt * 0.3) if not model.embedding and rng.random() < 0.4 else 0
    spend = ((prompt - cache_read) * model.input_price + cache_read * model.input_price * 0.1
             + completion * model.output_price) / 1e6  # fmt: skip
    return {
        "spend": spend, "prompt_tokens": prompt, "completion_tokens": completion,
        "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": 0,
        "api_requests": requests, "successful_requests": ok, "failed_requests": failed,
        "total_response_time_ms": ok * (300 if model.embedding else 2200), "timed_requests": ok,
    }  # fmt: skip


# --- the gateway's tables, directly -----------------------------------------------------------------


def _tsv(values: Sequence[object]) -> str:
    return "\t".join(str(value) for value in values) + "\n"


def fill_gateway(url: str, data: ReferenceData, indexes: Sequence[int] | None = None) -> int:
    """COPY the directory and the facts of these days (default: all) into a migrated gateway database,
    every day closed and verified as if fetched three hours after its end. Returns the facts written."""
    indexes = range(data.scale.days) if indexes is None else indexes
    written = 0
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY users (id, username, email, role) FROM STDIN") as copy:
                for user in data.users:
                    copy.write(_tsv((user.user_id, user.user_id, f"{user.user_id}@reference.test", "user")))
            with cur.copy("COPY api_keys (id, user_id, name, key_alias, token_hash) FROM STDIN") as copy:
                for number, key in enumerate(data.keys):
                    owner = key.owner.user_id
                    copy.write(_tsv((f"key-{number:05d}", owner, key.alias, key.alias, key.token)))
            with cur.copy("COPY litellm_keys (api_key, key_alias, user_id, last_seen) FROM STDIN") as copy:
                last = data.day(data.scale.days - 1)
                for key in data.keys:
                    copy.write(_tsv((key.token, key.alias, key.owner.user_id, last)))
        for index in indexes:
            written += _fill_day(conn, data, index)
        conn.execute("ANALYZE")
    return written


def _fill_day(conn: psycopg.Connection[Any], data: ReferenceData, index: int) -> int:
    day = data.day(index)
    buffer = io.StringIO()
    count = requests = tokens = 0
    spend = 0.0
    for key, model, provider, m in data.cells(index):
        total_tokens = m["prompt_tokens"] + m["completion_tokens"]
        buffer.write(_tsv((
            day, key.token, key.owner.user_id, model.name, provider, key.owner.user_id, repr(m["spend"]),
            m["prompt_tokens"], m["completion_tokens"], m["cache_read_input_tokens"],
            m["cache_creation_input_tokens"], total_tokens, m["api_requests"], m["successful_requests"],
            m["failed_requests"], m["total_response_time_ms"], m["timed_requests"],
        )))  # fmt: skip
        count += 1
        requests += m["api_requests"]
        tokens += total_tokens
        spend += m["spend"]
    fetched_at = datetime.combine(day + timedelta(days=1), time(3), UTC)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY usage_facts ({FACT_COLUMNS}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cur.execute(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) SELECT %s, 'closed', %s, true, %s, coalesce(sum(spend), 0), %s, %s"
            " FROM usage_facts WHERE date = %s",
            (day, fetched_at, count, requests, tokens, day),
        )
    return count
