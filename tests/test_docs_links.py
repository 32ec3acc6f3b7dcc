"""The operator docs hang together: every relative link of README.md and docs/*.md names a file of the
repository, and every #anchor a heading of that file (as GitHub makes anchors of headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Written with the /metrics work, by another change: README links it already.
NOT_YET_WRITTEN = {ROOT / "docs" / "metrics.md"}

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"```.*?```", re.DOTALL)


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", _CODE.sub("", markdown), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _links(path: Path) -> list[str]:
    return [t for t in _LINK.findall(_CODE.sub("", path.read_text())) if not re.match(r"[a-z]+:", t)]


def test_the_operator_docs_exist_and_readme_links_them() -> None:
    names = {path.name for path in DOCS}
    expected = {"architecture", "configuration", "day-lifecycle", "replicas", "backup", "upgrades"}
    assert {f"{name}.md" for name in expected | {"troubleshooting"}} <= names
    readme_links = set(_links(ROOT / "README.md"))
    for name in sorted(expected | {"troubleshooting", "metrics"}):
        assert f"docs/{name}.md" in readme_links


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(path: Path) -> None:
    for target in _links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if linked in NOT_YET_WRITTEN and not linked.exists():
            continue
        assert linked.exists(), f"{path.name}: {target} names no file"
        if anchor:
            assert anchor in _anchors(linked.read_text()), f"{path.name}: {target} names no heading"


def test_the_architecture_has_its_picture() -> None:
    assert "```mermaid\nflowchart" in (ROOT / "docs" / "architecture.md").read_text()


def test_anchors_are_made_as_github_makes_them() -> None:
    assert _anchors("## Attribution: who usage counts for\n# Split pages") == {
        "attribution-who-usage-counts-for",
        "split-pages",
    }
