"""Aggregation over ``usage_facts`` in SQL: the vocabulary (``vocabulary``: dimensions, orders, filters,
cursors), totals, series and breakdowns (``aggregates``), and batched nested queries (``nested``).

Reads only; never writes facts (that is ``daycache``) and never calls LiteLLM.
"""
