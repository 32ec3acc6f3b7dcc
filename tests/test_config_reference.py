"""docs/configuration.md is the settings class, rendered: every field, its variable, type, default and
description, and CI fails when the committed copy drifts from the class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from usage_gateway.server.config import ENV_PREFIX, Settings
from usage_gateway.server.config_reference import main, render

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"


def _row(variable: str) -> list[str]:
    for line in render().splitlines():
        if line.startswith(f"| `{ENV_PREFIX}{variable}` |"):
            return [cell.strip() for cell in line.strip("|").split(" | ")]
    raise AssertionError(f"no row for {variable}")


def test_the_committed_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run"
        " `.venv/bin/python -m usage_gateway.server.config_reference > docs/configuration.md`"
    )


def test_every_setting_has_a_description_and_a_row() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert missing == [], f"give these fields a docstring: {missing}"
    text = render()
    for name in Settings.model_fields:
        assert f"| `{ENV_PREFIX}{name.upper()}` |" in text


def test_types_defaults_and_descriptions_come_from_the_fields() -> None:
    assert _row("LITELLM_PAGE_SIZE")[1:3] == ["integer, ≥ 1, ≤ 1000", "`1000`"]
    assert _row("CLOSE_AFTER_HOURS")[1:3] == ["number, ≥ 0", "`2`"]
    assert _row("LOG_FORMAT")[1:3] == ["one of `json`, `console`", "`console`"]
    assert _row("JWT_SECRET")[1:3] == ["secret string", "unset"]
    assert _row("CORS_ORIGINS")[1:3] == ["comma-separated list", "empty"]
    assert _row("MIGRATE_ON_START")[1:3] == ["boolean", "`false`"]
    description = Settings.model_fields["today_ttl_seconds"].description
    assert description is not None
    assert _row("TODAY_TTL_SECONDS")[3] == " ".join(description.split())


def test_check_passes_on_the_reference_and_fails_with_a_diff_on_a_stale_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", str(REFERENCE)]) == 0
    stale = tmp_path / "configuration.md"
    stale.write_text(render().replace("`8000`", "`8080`"), encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "-| `USAGE_GATEWAY_PORT` | integer, ≥ 0, ≤ 65535 | `8080` |" in err
    assert "is out of date" in err
    assert main(["--check", str(tmp_path / "absent.md")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_module_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "usage_gateway.server.config_reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert result.stdout == render()
