"""How big each benchmark is: the reference plan of DESIGN §10 and the smoke plan CI runs in seconds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from bench.reference_data import Scale

GROUPS = (
    "cold",
    "warm",
    "concurrency",
    "endusers",
    "distinct",
    "cache",
    "statements",
    "export",
    "curves",
    "shedding",
)


@dataclass(frozen=True)
class Plan:
    name: str
    scale: Scale  # the main data set
    small: Scale  # the same with a tenth of the users and keys, for the users curve
    repeat: int  # repetitions behind each median
    slow_repeat: int  # repetitions of the cold loads and exports (minutes each at reference scale)
    dashboard_days: int
    cold_days: int
    latency_ms: float  # LiteLLM's time per page in the cold figures
    cold_concurrency: tuple[int, ...]  # LITELLM_CONCURRENCY of the gateway rows (the first is the default)
    clients: tuple[int, ...]  # concurrent clients of the load figures
    min_requests: int  # requests per load level, at least, and at least 4 per client…
    load_seconds: float  # …unless this time has passed (each client makes one request at least)
    cache_requests: int  # requests of each answer-cache level
    nodes: tuple[int, ...]  # `first` of the statements figure
    export_days: tuple[int, ...]  # export ranges (the last is the one-year figure)
    export_formats: tuple[str, ...]
    curve_days: tuple[int, ...]
    # The cold figures' LiteLLM: the share of two-provider (day, key, model) groups given a legacy row
    # with a NULL user_id; whether its answers are computed once and replayed (else on every request);
    # whether the cold loads are also timed against the sequential baseline (a minute or more).
    legacy_share: float = 0.0
    replay: bool = True
    cold_baseline: bool = True
    # The shedding figures: concurrent clients, and the gateway's MAX_CONCURRENT_OPERATIONS,
    # MAX_QUEUED_OPERATIONS and MAX_QUEUE_WAIT_SECONDS (None: its defaults).
    shed_clients: int = 200
    shed_admission: tuple[int, int, float] | None = None

    @property
    def last_day(self) -> date:
        return self.scale.last_day

    def requests_at(self, clients: int) -> int:
        return max(self.min_requests, 4 * clients)

    @classmethod
    def reference(cls, repeat: int = 5, slow_repeat: int = 1) -> Plan:
        scale = Scale()
        return cls(
            name="reference",
            scale=scale,
            small=replace(scale, users=scale.users // 10, keys=scale.keys // 10),
            repeat=repeat,
            slow_repeat=slow_repeat,
            dashboard_days=90,
            cold_days=30,
            latency_ms=200.0,
            cold_concurrency=(8, 16),
            clients=(1, 10, 50),
            min_requests=40,
            load_seconds=60.0,
            cache_requests=200,
            nodes=(5, 50, 500),
            export_days=(91, 365),
            export_formats=("CSV", "PARQUET", "XLSX"),
            curve_days=(30, 90, 365),
        )

    @classmethod
    def smoke(cls, repeat: int = 3, slow_repeat: int = 1) -> Plan:
        scale = Scale.smoke()
        return cls(
            name="smoke",
            scale=scale,
            small=replace(scale, users=scale.users // 10, keys=scale.keys // 10),
            repeat=repeat,
            slow_repeat=slow_repeat,
            dashboard_days=7,
            cold_days=7,
            latency_ms=5.0,
            cold_concurrency=(8,),
            clients=(1, 5),
            min_requests=10,
            load_seconds=2.0,
            cache_requests=40,
            nodes=(5, 50),
            export_days=(4, 14),
            export_formats=("CSV", "PARQUET", "XLSX"),
            curve_days=(3, 7, 14),
            shed_clients=8,
            shed_admission=(1, 1, 0.5),  # a 7-day dashboard is fast: only this little capacity overloads
        )
