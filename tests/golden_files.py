"""Where the tests find the LiteLLM golden files: the in-repo copy under ``tests/golden/litellm``
(see its README for what they are and where they come from)."""

from __future__ import annotations

from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden" / "litellm"
