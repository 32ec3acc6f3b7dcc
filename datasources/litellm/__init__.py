"""LiteLLM, read exactly: the HTTP client (``client``), the additive metrics of a row (``day_metrics``) and
the split of a batch of days into (key × LiteLLM user × model × provider) facts (``split``).

Owns every request to LiteLLM's usage API; touches no database and no cache.
"""
