"""The deployment files, checked without a Docker engine: docker-compose.yml against the Compose
specification's JSON schema (as written, and with deploy/demo.env substituted), its wiring of the gateway's
settings, the LiteLLM config it mounts, and the Dockerfile's posture (pinned base, non-root, health check,
entry point)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import free_port, running_postgres, serving
from usage_gateway.migrations import apply_migrations
from usage_gateway.server.app import create_app
from usage_gateway.server.config import ENV_PREFIX, Settings, load_settings
from usage_gateway.server.web_assets import DEFAULT_NODE_MODULES, WebAssets, copy_assets

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DEMO_ENV = ROOT / "deploy" / "demo.env"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parent / "compose" / "compose-spec.json"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, as compose interpolates.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _demo_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in DEMO_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise AssertionError(f"{name} is required: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _errors(document: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(document)]


def test_the_compose_file_as_written_follows_the_compose_specification() -> None:
    assert _errors(_compose()) == []


def test_the_compose_file_with_the_demo_values_follows_the_specification_too() -> None:
    # What `docker compose up` sees once .env is copied from deploy/demo.env: every required variable set.
    document = yaml.safe_load(_interpolate(COMPOSE.read_text(), _demo_env()))
    assert _errors(document) == []


def test_the_schema_check_refuses_what_compose_refuses() -> None:
    document = _compose()
    document["services"]["gateway"]["healthcheck"]["every"] = "15s"  # not a healthcheck key
    document["services"]["redis"]["ports"] = {"6379": 6379}  # ports are a list
    errors = _errors(document)
    assert any(e.startswith("services.gateway.healthcheck") for e in errors), errors
    assert any(e.startswith("services.redis.ports") for e in errors), errors


def test_every_service_has_a_health_check_and_state_lives_in_named_volumes() -> None:
    document = _compose()
    services = document["services"]
    assert set(services) == {"litellm", "litellm-postgres", "postgres", "redis", "gateway"}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert isinstance(test, list), f"{name} has no health check"
        assert test[0] in {"CMD", "CMD-SHELL"}, f"{name}: {test}"
        assert len(test) > 1, f"{name}: {test}"
    named = set(document["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("./") or source in named, f"{name} mounts {source!r}, not a named volume"
    assert {"gateway-pgdata", "litellm-pgdata", "gateway-exports"} <= named
    for name in ("gateway", "litellm"):
        for dependency, condition in services[name]["depends_on"].items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in _compose()["services"].items():
        image = service["image"]
        reference = image.split("@", 1)[0]
        repository, _, tag = reference.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
        if "@" in image:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.split("@", 1)[1]), image
    gateway = _compose()["services"]["gateway"]
    assert gateway["build"] == "."
    assert gateway["image"] == f"usage-gateway:{version('usage-gateway')}"


def test_the_gateway_is_configured_with_real_settings_only() -> None:
    environment = _compose()["services"]["gateway"]["environment"]
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= fields, set(environment) - fields
    assert environment[f"{ENV_PREFIX}MIGRATE_ON_START"] == "true"
    assert environment[f"{ENV_PREFIX}LITELLM_URL"] == "http://litellm:4000"
    # The gateway and LiteLLM are given the same master key.
    litellm = _compose()["services"]["litellm"]["environment"]
    assert environment[f"{ENV_PREFIX}LITELLM_MASTER_KEY"] == litellm["LITELLM_MASTER_KEY"]


def test_the_demo_values_make_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    environment = _compose()["services"]["gateway"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, _interpolate(str(value), _demo_env()))
    settings = load_settings()
    assert settings.migrate_on_start is True
    assert settings.host == "0.0.0.0"  # noqa: S104  # a container's service listens on all its interfaces
    assert settings.database_url.endswith("@postgres:5432/usage_gateway")
    assert settings.jwt_secret is not None
    assert len(settings.jwt_secret.get_secret_value()) >= 32


def test_secrets_are_required_not_defaulted() -> None:
    text = COMPOSE.read_text()
    required = {m["name"] for m in _VARIABLE.finditer(text) if m["op"] in (":?", "?")}
    defaulted = {m["name"] for m in _VARIABLE.finditer(text) if m["op"] in (":-", "-")}
    assert {"GATEWAY_DB_PASSWORD", "LITELLM_DB_PASSWORD", "LITELLM_MASTER_KEY", "JWT_SECRET"} <= required
    assert not any(re.search("PASSWORD|KEY|SECRET", name) for name in defaulted), defaulted
    assert required == set(_demo_env()), "deploy/demo.env must give exactly the required variables"
    with pytest.raises(AssertionError, match="JWT_SECRET is required"):
        _interpolate(text, {k: v for k, v in _demo_env().items() if k != "JWT_SECRET"})


def test_litellm_gets_a_config_with_a_mock_model() -> None:
    litellm = _compose()["services"]["litellm"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in litellm["volumes"]}
    command = litellm["command"]
    config_path = command[command.index("--config") + 1]
    source = ROOT / mounts[config_path]
    config = yaml.safe_load(source.read_text())
    mocks = [m for m in config["model_list"] if m["litellm_params"].get("mock_response")]
    assert mocks, "no model answers with mock_response"
    assert all(isinstance(m["model_name"], str) and m["model_name"] for m in mocks)
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert litellm["environment"]["DATABASE_URL"].startswith("postgresql://litellm:")
    assert "@litellm-postgres:5432/" in litellm["environment"]["DATABASE_URL"]


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    ]


def _exec_form(argument: str) -> list[str]:
    value = json.loads(argument)
    assert isinstance(value, list), argument
    assert all(isinstance(item, str) for item in value), argument
    return value


def test_the_dockerfile_pins_its_base_runs_as_a_user_and_checks_readiness() -> None:
    instructions = _instructions()
    args = dict(
        argument.split("=", 1) for keyword, argument in instructions if keyword == "ARG" and "=" in argument
    )
    bases = [argument.split()[0] for keyword, argument in instructions if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: build stages and a runtime stage"
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base) for base in bases]
    for image in images:
        assert re.fullmatch(r"(python|node):\d+\.\d+\.\d+-(slim-)?\w+(-slim)?@sha256:[0-9a-f]{64}", image), (
            image
        )
    assert re.match(r"python:[\d.]+-slim-", images[-1]), "the runtime is the slim Python image"
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users, "no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]
    healthcheck = next(argument for keyword, argument in instructions if keyword == "HEALTHCHECK")
    probe = _exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert probe[0] == "python"
    assert "/readyz" in probe[-1]
    entrypoint = [_exec_form(a) for k, a in instructions if k == "ENTRYPOINT"][-1]
    command = [_exec_form(a) for k, a in instructions if k == "CMD"][-1]
    assert (entrypoint + command)[:2] == ["usage-gateway", "serve"], shlex.join(entrypoint + command)
    install = next(a for k, a in instructions if k == "RUN" and "--no-index" in a)
    assert "--find-links /wheels usage-gateway" in install  # the package from the build stage's wheel


def _environment() -> dict[str, str]:
    pairs = [shlex.split(argument) for keyword, argument in _instructions() if keyword == "ENV"]
    return dict(item.split("=", 1) for items in pairs for item in items)


def test_the_image_ships_graphiqls_files_where_its_setting_points(tmp_path: Path) -> None:
    # The runtime stage copies the served files out of the web stage's node_modules; the gateway finds
    # them through USAGE_GATEWAY_WEB_ASSETS_DIR. The same copy, from the checkout's node_modules, here.
    install = next(a for k, a in _instructions() if k == "RUN" and "copy_assets(" in a)
    copy = re.search(r"copy_assets\(Path\('([^']+)'\), Path\('([^']+)'\)\)", install)
    assert copy is not None, install
    assert f"from=web,source=/web/node_modules,target={copy[1]}" in install
    assert _environment()[f"{ENV_PREFIX}WEB_ASSETS_DIR"] == copy[2]
    if not DEFAULT_NODE_MODULES.is_dir():
        pytest.fail("web/node_modules is not installed: run `make setup` (npm ci in web/)")
    copy_assets(DEFAULT_NODE_MODULES, tmp_path / "web")
    assets = WebAssets(tmp_path / "web")
    assert assets.url("graphiql.js").startswith("/assets/graphiql.js?v=")
    stages = [a.split() for k, a in _instructions() if k == "FROM"]
    assert ["${NODE_IMAGE}", "AS", "web"] in stages
    npm = [a.split() for k, a in _instructions() if k == "RUN" and a.startswith("npm ci")]
    assert len(npm) == 1
    assert {"--ignore-scripts", "--omit=dev"} <= set(npm[0])  # no package runs code; no test tools


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv/", "var/", ".env", "bench/results/", ".pytest_cache/"} <= ignored


def _run_probe(command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """A health check's exec form run here, with this interpreter standing in for the image's Python:
    its exit status and what it printed on stderr."""
    assert command[0] in {"python", "python3"}, command
    environment = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, *command[1:]],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stderr


def _dockerfile_probe() -> list[str]:
    healthcheck = next(argument for keyword, argument in _instructions() if keyword == "HEALTHCHECK")
    return _exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())


@contextmanager
def _gateway(database_url: str, litellm_url: str, tmp_path: Path) -> Iterator[int]:
    settings = Settings(
        database_url=database_url,
        litellm_url=litellm_url,
        litellm_master_key=MASTER_KEY,
        jwt_secret="s" * 32,
        export_dir=tmp_path,
    )
    with serving(create_app(settings), lifespan="on") as url:
        yield int(url.rsplit(":", 1)[1])


def test_the_images_health_check_passes_on_a_ready_gateway_and_fails_otherwise(
    database_url: str, tmp_path: Path
) -> None:
    probe = _dockerfile_probe()
    store = LiteLLMStore([], [], [], master_key=MASTER_KEY)
    with running_litellm(store) as litellm_url, _gateway(database_url, litellm_url, tmp_path) as port:
        assert _run_probe(probe, {f"{ENV_PREFIX}PORT": str(port)}) == (0, "")
    # Postgres gone: /readyz answers 503, and the probe fails on it.
    with running_postgres() as postgres:
        apply_migrations(postgres.url)
        with running_litellm(store) as litellm_url, _gateway(postgres.url, litellm_url, tmp_path) as port:
            assert _run_probe(probe, {f"{ENV_PREFIX}PORT": str(port)}) == (0, "")
            postgres.stop()
            status, err = _run_probe(probe, {f"{ENV_PREFIX}PORT": str(port)})
    assert status != 0
    assert "HTTP Error 503" in err
    # Nothing listening at all.
    status, err = _run_probe(probe, {f"{ENV_PREFIX}PORT": str(free_port())})
    assert status != 0
    assert "Connection refused" in err


def test_the_compose_health_checks_of_the_gateway_and_litellm_probe_what_they_name(
    database_url: str, tmp_path: Path
) -> None:
    services = _compose()["services"]

    def probe(service: str, port: str | int) -> list[str]:
        *head, code = services[service]["healthcheck"]["test"][1:]
        return [*head, re.sub(r"127\.0\.0\.1:\d+/", f"127.0.0.1:{port}/", code)]

    store = LiteLLMStore([], [], [], master_key=MASTER_KEY)
    with running_litellm(store) as litellm_url:
        litellm_port = litellm_url.rsplit(":", 1)[1]
        assert _run_probe(probe("litellm", litellm_port)) == (0, "")
        with _gateway(database_url, litellm_url, tmp_path) as port:
            assert _run_probe(probe("gateway", port)) == (0, "")
    status, err = _run_probe(probe("litellm", litellm_port))
    assert status != 0
    assert "Connection refused" in err
