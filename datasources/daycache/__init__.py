"""The day cache: which days are present, fresh and verified (``days``), the Postgres tier that replaces a
day atomically (``store``), and the per-day locks in Redis or Postgres (``locks``).

Owns ``usage_days`` and the writes of ``usage_facts``; reads LiteLLM only through ``litellm``; never
aggregates (that is ``facts``).
"""
