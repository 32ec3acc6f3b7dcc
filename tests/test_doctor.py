"""``usage-gateway doctor``, run as a real process against the suite's Postgres and Redis and the
LiteLLM-compatible server: all green, then each dependency broken in turn; and where the clock check
draws its lines."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from usage_gateway.devtools.litellm_compat import MASTER_KEY, Faults, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres, free_port
from usage_gateway.migrations import available
from usage_gateway.server.config import ENV_PREFIX
from usage_gateway.server.doctor import Check, Status, run_side_by_side
from usage_gateway.server.doctor.litellm import clock_check

CLI = str(Path(sys.executable).with_name("usage-gateway"))
NAMES = ("settings", "tokens", "postgres", "migrations", "redis", "litellm", "clock", "activity", "key list")
LINE = re.compile(rf"^(ok|warn|FAIL|skip) +({'|'.join(NAMES)})  +(.*)$")
DB_PASSWORD = f"pw-{secrets.token_hex(8)}"  # the suite's Postgres trusts loopback: any password connects
ALICE_KEY, ROOT_KEY = "sk-alice-0001", "sk-root-0003"  # an internal_user's key, a proxy_admin's
KEYS: list[dict[str, Any]] = [
    {"raw_key": ALICE_KEY, "key_alias": "alice", "user_id": "alice"},
    {"raw_key": ROOT_KEY, "key_alias": "root", "user_id": "root"},
]
USERS: list[dict[str, Any]] = [
    {
        "user_id": "alice",
        "user_alias": "Alice",
        "user_email": "alice@acme.test",
        "user_role": "internal_user",
    },
    {"user_id": "root", "user_alias": "Root", "user_email": None, "user_role": "proxy_admin"},
]


class Doctor:
    """One run of the command: its exit code, and its lines by check name."""

    def __init__(self, result: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.code = result.returncode
        self.stdout, self.stderr = result.stdout, result.stderr
        self.seconds = seconds
        self.lines: dict[str, tuple[str, str]] = {}
        *checks, self.summary = result.stdout.strip().splitlines()
        for line in checks:
            match = LINE.match(line)
            assert match, f"not a check line: {line!r}\n{result.stdout}{result.stderr}"
            self.lines[match.group(2)] = (match.group(1), match.group(3))
        assert tuple(self.lines) == NAMES, result.stdout

    def status(self, name: str) -> str:
        return self.lines[name][0]

    def text(self, name: str) -> str:
        return self.lines[name][1]

    def statuses(self) -> dict[str, str]:
        return {name: status for name, (status, _) in self.lines.items()}


def run_doctor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        [CLI, "doctor", *args],
        env={**inherited, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def store() -> LiteLLMStore:
    return LiteLLMStore(KEYS, USERS, [], master_key=MASTER_KEY)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def litellm_url(store: LiteLLMStore, faults: Faults) -> Iterator[str]:
    with running_litellm(store, faults) as url:
        yield url


@pytest.fixture
def env(database_url: str, redis_url: str, litellm_url: str) -> dict[str, str]:
    return {
        f"{ENV_PREFIX}DATABASE_URL": database_url.replace("gateway@", f"gateway:{DB_PASSWORD}@"),
        f"{ENV_PREFIX}REDIS_URL": redis_url,
        f"{ENV_PREFIX}LITELLM_URL": litellm_url,
        f"{ENV_PREFIX}LITELLM_MASTER_KEY": MASTER_KEY,
        f"{ENV_PREFIX}JWT_SECRET": secrets.token_hex(32),
    }


@pytest.fixture
def doctor(env: dict[str, str], tmp_path: Path) -> Any:
    def run(**changes: str) -> Doctor:
        started = time.monotonic()
        result = run_doctor({**env, **{f"{ENV_PREFIX}{k.upper()}": v for k, v in changes.items()}}, tmp_path)
        return Doctor(result, time.monotonic() - started)

    return run


def _others_ok(run: Doctor, *broken: str) -> None:
    assert {name: s for name, s in run.statuses().items() if name not in broken} == {
        name: "ok" for name in NAMES if name not in broken
    }, run.stdout


def test_all_green_exits_0_with_every_line_ok(doctor: Any, env: dict[str, str], database_url: str) -> None:
    run = doctor()
    assert run.code == 0, run.stdout + run.stderr
    assert run.statuses() == dict.fromkeys(NAMES, "ok")
    assert run.summary == f"passed: {len(NAMES)} ok, 0 warn, 0 FAIL, 0 skip"
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    assert f"connected to 127.0.0.1:{port}, database {database_url.rsplit('/', 1)[1]}" in run.text("postgres")
    assert f"all {len(available())} applied (latest {available()[-1].name})" == run.text("migrations")
    assert run.text("litellm").endswith("answers (HTTP 200 on /health/liveliness)")
    for secret in (DB_PASSWORD, MASTER_KEY, env[f"{ENV_PREFIX}JWT_SECRET"]):
        assert secret not in run.stdout + run.stderr


def test_a_password_in_the_litellm_url_is_not_shown(doctor: Any, litellm_url: str) -> None:
    password = f"proxy-{secrets.token_hex(6)}"
    run = doctor(litellm_url=litellm_url.replace("http://", f"http://gateway:{password}@"))
    # (httpx sends the URL's user and password as Basic auth instead of the master key, as the gateway's
    # own client would: LiteLLM refuses that, and the activity line says so.)
    assert run.text("litellm") == f"{litellm_url} answers (HTTP 200 on /health/liveliness)"
    assert password not in run.stdout


def test_json_output(env: dict[str, str], tmp_path: Path) -> None:
    result = run_doctor(env, tmp_path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = orjson.loads(result.stdout)
    assert report["ok"] is True
    assert [(check["name"], check["status"]) for check in report["checks"]] == [(n, "ok") for n in NAMES]
    assert DB_PASSWORD not in result.stdout


def test_postgres_unreachable(doctor: Any) -> None:
    port = free_port()  # nothing listens there
    run = doctor(database_url=f"postgresql://gateway:{DB_PASSWORD}@127.0.0.1:{port}/usage_gateway")
    assert run.code == 1
    assert run.status("postgres") == "FAIL"
    assert run.text("postgres") == (
        f"cannot connect to Postgres at 127.0.0.1:{port} ({ENV_PREFIX}DATABASE_URL): connection refused"
        " → is Postgres running there?"
    )
    assert run.lines["migrations"] == ("skip", "needs Postgres")
    _others_ok(run, "postgres", "migrations")
    assert DB_PASSWORD not in run.stdout


def test_a_malformed_database_url_is_one_line(doctor: Any) -> None:
    run = doctor(database_url="postgresql://gateway@127.0.0.1:notaport/usage_gateway")
    assert run.code == 1
    assert run.lines["postgres"] == (
        "FAIL",
        f"cannot connect to Postgres at 127.0.0.1:notaport ({ENV_PREFIX}DATABASE_URL): invalid integer value"
        ' "notaport" for connection option "port" → check the URL and that Postgres accepts connections from'
        " here",
    )
    assert run.stderr == ""


def test_a_user_who_cannot_read_the_tables(
    doctor: Any, postgres_server: LocalPostgres, database_url: str
) -> None:
    role = f"{database_url.rsplit('/', 1)[1]}_reader"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        run = doctor(database_url=database_url.replace("gateway@", f"{role}@"))
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")
    assert run.code == 1
    assert run.status("postgres") == "ok"
    assert f"as {role} (PostgreSQL" in run.text("postgres")
    assert run.lines["migrations"] == (
        "FAIL",
        "cannot read schema_migrations: permission denied for table schema_migrations → check that the user"
        f" of {ENV_PREFIX}DATABASE_URL may read the gateway's tables",
    )


def test_redis_unreachable(doctor: Any) -> None:
    port = free_port()
    run = doctor(redis_url=f"redis://127.0.0.1:{port}/0")
    assert run.code == 1
    assert run.lines["redis"] == (
        "FAIL",
        f"cannot reach Redis at 127.0.0.1:{port}/0 ({ENV_PREFIX}REDIS_URL): connection refused"
        " → is Redis running there? (it is optional: unset the variable to run without it)",
    )
    _others_ok(run, "redis")


def test_redis_not_set_is_skipped_not_failed(doctor: Any) -> None:
    run = doctor(redis_url="")
    assert run.code == 0
    assert run.lines["redis"] == ("skip", f"{ENV_PREFIX}REDIS_URL is not set (optional)")
    _others_ok(run, "redis")


def test_litellm_unreachable(doctor: Any) -> None:
    port = free_port()
    run = doctor(litellm_url=f"http://127.0.0.1:{port}")
    assert run.code == 1
    assert run.status("litellm") == "FAIL"
    assert run.text("litellm").startswith(
        f"cannot connect to LiteLLM at http://127.0.0.1:{port} ({ENV_PREFIX}LITELLM_URL): "
    )
    assert "→ is LiteLLM running there, on that port?" in run.text("litellm")
    assert {name: run.status(name) for name in ("clock", "activity", "key list")} == dict.fromkeys(
        ("clock", "activity", "key list"), "skip"
    )
    _others_ok(run, "litellm", "clock", "activity", "key list")


def test_litellm_not_set_warns_and_skips_what_needs_it(doctor: Any) -> None:
    run = doctor(litellm_url="")
    assert run.code == 0, run.stdout  # the gateway runs on, serving the days it has stored
    assert run.lines["litellm"] == (
        "warn",
        f"{ENV_PREFIX}LITELLM_URL is not set: only days already stored are served → set it to LiteLLM's base"
        " URL, e.g. https://litellm.internal:4000",
    )
    for name in ("clock", "activity", "key list"):
        assert run.lines[name] == ("skip", f"needs {ENV_PREFIX}LITELLM_URL")


def test_no_way_to_check_tokens_fails(doctor: Any) -> None:
    run = doctor(jwt_secret="")
    assert run.code == 1
    assert run.status("tokens") == "FAIL"
    assert run.text("tokens").startswith(
        f"neither {ENV_PREFIX}JWT_SECRET nor {ENV_PREFIX}JWT_JWKS_URL is set: every request is answered 401"
    )
    _others_ok(run, "tokens")


def test_wrong_master_key(doctor: Any) -> None:
    run = doctor(litellm_master_key="sk-not-the-master-key")
    assert run.code == 1
    assert run.lines["activity"] == (
        "FAIL",
        "LiteLLM refused the master key on /user/daily/activity (HTTP 401: Authentication Error, Invalid API"
        f" key provided.) → set {ENV_PREFIX}LITELLM_MASTER_KEY to LiteLLM's master key, or a key of a user"
        " whose role is proxy_admin",
    )
    assert run.lines["key list"] == ("skip", "LiteLLM refused the master key")
    _others_ok(run, "activity", "key list")
    assert "sk-not-the-master-key" not in run.stdout


def test_master_key_not_set(doctor: Any) -> None:
    run = doctor(litellm_master_key="")
    assert run.code == 1
    assert run.status("activity") == "FAIL"
    assert run.text("activity").startswith(f"{ENV_PREFIX}LITELLM_MASTER_KEY is not set")
    assert run.lines["key list"] == ("skip", f"needs {ENV_PREFIX}LITELLM_MASTER_KEY")


def test_a_non_admin_key_is_named(doctor: Any, store: LiteLLMStore) -> None:
    """LiteLLM answers an internal_user's key with its owner's rows and keys, without an error; asked
    for another user, it says so (403 on the activity) or answers with the owner's keys anyway."""
    run = doctor(litellm_master_key=ALICE_KEY)
    assert run.code == 1
    assert run.status("activity") == "FAIL"
    assert run.text("activity").startswith(
        "the master key has no admin view: LiteLLM gives it only its owner's rows, which the gateway would"
        " take for everyone's (asked for another user's: HTTP 403, Non-admin users can only view their own"
        " spend data.)"
    )
    assert run.status("key list") == "FAIL"
    assert run.text("key list").startswith(
        "the master key is not proxy_admin: LiteLLM lists only its owner's keys (asked for another user's, it"
        " answered with 1 of the owner's)"
    )
    _others_ok(run, "activity", "key list")
    assert ALICE_KEY not in run.stdout
    # Each check asked for one small page about a user nobody has.
    (activity,) = store.requests_for("/user/daily/activity")
    assert activity.params["page_size"] == "1"
    assert activity.params["start_date"] == activity.params["end_date"]
    (keys,) = store.requests_for("/key/list")
    assert keys.params["size"] == "1"
    assert activity.params["user_id"] == keys.params["user_id"] == "usage-gateway-doctor-probe"


def test_a_proxy_admin_users_key_passes(doctor: Any) -> None:
    run = doctor(litellm_master_key=ROOT_KEY)
    assert run.code == 0, run.stdout
    _others_ok(run)


def test_a_fresh_database_has_no_migrations(
    doctor: Any, postgres_server: LocalPostgres, database_url: str
) -> None:
    name = f"{database_url.rsplit('/', 1)[1]}_empty"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        run = doctor(database_url=postgres_server.url_for(name))
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert run.code == 1
    assert run.lines["migrations"] == (
        "FAIL",
        f"none of {len(available())} applied: database {name} has no schema_migrations → run"
        f" `usage-gateway migrate` (or does {ENV_PREFIX}DATABASE_URL name the wrong database?)",
    )
    _others_ok(run, "migrations")


def test_a_missing_migration_row(doctor: Any, database_url: str) -> None:
    last = available()[-1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (last.version,))
    run = doctor()
    assert run.code == 1
    total = len(available())
    assert run.lines["migrations"] == (
        "FAIL",
        f"{total - 1} of {total} applied; pending: {last.name} → run `usage-gateway migrate`",
    )
    _others_ok(run, "migrations")


def test_a_migration_this_version_does_not_ship_warns(doctor: Any, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_from_the_future.sql')"
        )
    run = doctor()
    assert run.code == 0, run.stdout  # a warning is not a failure
    assert run.status("migrations") == "warn"
    assert "1 this version does not ship: 9999_from_the_future.sql" in run.text("migrations")
    assert run.summary == f"passed: {len(NAMES) - 1} ok, 1 warn, 0 FAIL, 0 skip"


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("DATABASE_URL", "mysql://db.internal/usage", "must be a postgresql:// URL"),
        ("LITELLM_CONCURRENCY", "zero", "Input should be a valid integer"),
    ],
)
def test_a_bad_setting_names_the_variable_and_skips_the_rest(
    doctor: Any, variable: str, value: str, why: str
) -> None:
    run = doctor(**{variable.lower(): value})
    assert run.code == 1
    assert run.status("settings") == "FAIL"
    assert run.text("settings").startswith(f"{ENV_PREFIX}{variable}: ")
    assert why in run.text("settings")
    assert run.text("settings").endswith("→ fix that variable in the environment or in .env")
    assert {name: run.status(name) for name in NAMES[1:]} == dict.fromkeys(NAMES[1:], "skip")
    assert run.stderr == ""  # a line, not a traceback


def test_a_misspelt_variable_is_named(env: dict[str, str], tmp_path: Path) -> None:
    """The settings ignore names they do not know: a typo would leave its setting at the default."""
    (tmp_path / ".env").write_text(f"export {ENV_PREFIX}LITELLM_MASTERKEY=sk-typo\n")
    result = run_doctor({**env, f"{ENV_PREFIX}REDIS_ULR": "redis://x"}, tmp_path)
    assert result.returncode == 0, result.stdout  # a warning
    run = Doctor(result, 0)
    assert run.lines["settings"] == (
        "warn",
        f"read from the environment and .env; not settings, so ignored: {ENV_PREFIX}LITELLM_MASTERKEY"
        f" ({ENV_PREFIX}LITELLM_MASTER_KEY?), {ENV_PREFIX}REDIS_ULR ({ENV_PREFIX}REDIS_URL?)"
        ' → fix or remove those names (the README\'s "Settings" lists every setting)',
    )
    _others_ok(run, "settings")


def test_settings_from_a_dot_env_file(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    result = run_doctor({}, tmp_path)
    assert result.returncode == 0, result.stdout
    assert "ok    settings    read from the environment and .env" in result.stdout


@pytest.mark.parametrize(
    ("skew", "status", "found"),
    [
        (-300.0, "FAIL", "LiteLLM's clock is (299|300|301) s behind ours .*, over 60 s → synchronise"),
        (20.0, "warn", "LiteLLM's clock is (19|20|21) s ahead of ours .*, over 5 s → synchronise"),
        (0.0, "ok", "LiteLLM's clock agrees with ours"),
    ],
)
def test_clock_skew(doctor: Any, faults: Faults, skew: float, status: str, found: str) -> None:
    faults.reset(clock_skew_seconds=skew)
    run = doctor()
    assert run.code == (1 if status == "FAIL" else 0), run.stdout
    assert run.status("clock") == status
    assert re.search(found, run.text("clock")), run.text("clock")
    _others_ok(run, "clock")


def test_the_skewed_server_sends_one_date_header(litellm_url: str, faults: Faults) -> None:
    faults.reset(clock_skew_seconds=-3600)
    answer = httpx.get(f"{litellm_url}/health/liveliness")
    assert answer.status_code == 200
    (date,) = answer.headers.get_list("date")
    assert abs(parsedate_to_datetime(date).timestamp() - (time.time() - 3600)) < 3


def test_silent_hosts_cost_one_timeout_not_one_per_check(doctor: Any) -> None:
    """Three listeners that never accept nor answer: each check times out after 3 s, side by side."""
    with closing(_silent()) as pg, closing(_silent()) as redis, closing(_silent()) as litellm:
        run = doctor(
            database_url=f"postgresql://gateway@127.0.0.1:{pg.getsockname()[1]}/usage_gateway",
            redis_url=f"redis://127.0.0.1:{redis.getsockname()[1]}/0",
            litellm_url=f"http://127.0.0.1:{litellm.getsockname()[1]}",
        )
    assert run.code == 1
    assert {name: run.status(name) for name in ("postgres", "redis", "litellm")} == dict.fromkeys(
        ("postgres", "redis", "litellm"), "FAIL"
    )
    assert "connection timeout expired → is the host reachable" in run.text("postgres")
    assert "did not answer: timeout reading from socket" in run.text("redis")
    assert "sent no answer within 3 s" in run.text("litellm")
    assert run.seconds < 8, f"took {run.seconds:.1f} s"


def _silent() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # the kernel completes connections into the backlog; nobody reads them
    return sock


NOW = 1_800_000_000.25  # a moment; a Date header names whole seconds


def _date(moment: float) -> str:
    return formatdate(moment, usegmt=True)


@pytest.mark.parametrize(
    ("their_clock", "status"),
    [
        (NOW, "ok"),
        (NOW - 1.9, "ok"),  # a header up to 2 s stale (uvicorn refreshes it once a second) is no skew
        (NOW + 4.5, "ok"),  # within 5 s: said, not warned about
        (NOW + 7, "warn"),
        (NOW - 7, "warn"),
        (NOW + 62, "FAIL"),
        (NOW - 63, "FAIL"),
    ],
)
def test_clock_thresholds(their_clock: float, status: str) -> None:
    assert clock_check(_date(their_clock), NOW - 0.05, NOW + 0.05).status.value == status


def test_clock_without_a_usable_date_header_is_a_warning() -> None:
    assert clock_check(None, NOW, NOW).status is Status.WARN
    assert clock_check("yesterday", NOW, NOW).status is Status.WARN


def test_a_check_past_the_deadline_fails_without_holding_the_run() -> None:
    """A group still running at the deadline (a hung DNS lookup, say) fails its first check and skips the
    rest, while the groups that finished keep their lines."""

    def hung() -> list[Check]:
        time.sleep(5)
        return []

    started = time.monotonic()
    checks = run_side_by_side(
        [(("quick",), lambda: [Check("quick", Status.OK, "done")]), (("slow", "after"), hung)], 0.5
    )
    assert time.monotonic() - started < 2
    assert checks == [
        Check("quick", Status.OK, "done"),
        Check(
            "slow",
            Status.FAIL,
            "no answer within 0.5 s",
            "is the host reachable from here (firewall, network)?",
        ),
        Check("after", Status.SKIP, "needs slow"),
    ]


def test_a_check_that_raises_is_a_line_not_a_traceback() -> None:
    def broken() -> list[Check]:
        raise KeyError("surprise")

    checks = run_side_by_side([(("odd", "next"), broken)], 5)
    assert checks == [
        Check("odd", Status.FAIL, "the check itself failed (KeyError: 'surprise')"),
        Check("next", Status.SKIP, "needs odd"),
    ]
