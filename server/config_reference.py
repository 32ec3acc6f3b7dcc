"""The configuration reference (docs/configuration.md), generated from :class:`Settings`.

``python -m usage_gateway.server.config_reference`` prints it; ``--check PATH`` exits 1 with a diff when
``PATH`` differs from it, which is how CI keeps the committed copy from drifting.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from usage_gateway.server.config import ENV_PREFIX, Settings

COMMAND = "python -m usage_gateway.server.config_reference"

_HEADER = f"""# Configuration reference

Generated from the settings class, `usage_gateway.server.config.Settings`, by

    {COMMAND} > docs/configuration.md

Edit a field's docstring, not this file: `tests/test_config_reference.py` fails when they differ.

Every setting is an environment variable named `{ENV_PREFIX}` + the setting, or a `NAME=value` line
of a `.env` file in the working directory (the environment wins). A bad value stops `serve` and every
other command that reads the settings with one line naming the variable, before anything starts
(`usage-gateway doctor` reports it as a failed check). Booleans are `true`/`false` (also `1`/`0`,
`yes`/`no`).
"""

_SCALARS: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret string",
}


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _bounds(field: FieldInfo) -> list[str]:
    # Field(gt=…, ge=…, lt=…, le=…) leaves one annotated_types constraint per bound in the metadata.
    symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    return [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for attribute, symbol in symbols.items()
        if getattr(item, attribute, None) is not None
    ]


def type_of(field: FieldInfo) -> str:
    """The field's type as an operator writes it: ``integer, ≥ 1, ≤ 1000``; ``one of `json`, `console```."""
    annotation = _without_none(field.annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        name = "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    elif get_origin(annotation) is tuple:
        name = "comma-separated list"
    elif annotation in _SCALARS:
        name = _SCALARS[annotation]
    else:
        raise TypeError(f"no reference name for the type {annotation!r}: add it to _SCALARS")
    return ", ".join([name, *_bounds(field)])


def default_of(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple | list):
        return "empty" if not value else f"`{','.join(map(str, value))}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """docs/configuration.md: one row per setting, in the order of the settings class."""
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description: give the field a docstring")
        env = f"`{ENV_PREFIX}{name.upper()}`"
        rows.append(f"| {env} | {type_of(field)} | {default_of(field)} | {_cell(field.description)} |")
    return _HEADER + "\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", metavar="PATH", help="exit 1 with a diff if PATH differs from the reference"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.check)
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{COMMAND}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    if current == text:
        return 0
    diff = difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(path), "generated")
    sys.stderr.writelines(diff)
    print(f"{path} is out of date: run `{COMMAND} > {path}`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
