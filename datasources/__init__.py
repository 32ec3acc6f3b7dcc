"""Everything that does I/O, in rooms; nothing here imports Strawberry, the resolvers or the web app.

- ``litellm``: LiteLLM's HTTP API (every page, merged exactly; retries) and the split of a day into
  exact facts (the request plan);
- ``daycache``: the day lifecycle (open/closed, fresh/stale, verified), the Postgres tier, the locks;
- ``facts``: aggregation SQL over ``usage_facts``: the filter, totals, series, breakdowns, nested queries;
- ``exports``: the export query, the sink, one writer per format, the ``exports`` table;
- ``directory``: users and keys: lookups for the loaders, and the sync from LiteLLM;
- shared pieces: ``db`` (the pool), ``answer_cache``, ``rate_limit``, ``audit``.
"""
