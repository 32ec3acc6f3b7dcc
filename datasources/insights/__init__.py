"""Insights computed in SQL over the facts already held: budgets, forecasts, anomalies and top movers.

Reads only, except the alerts' record of what was sent. Never calls LiteLLM: every input is a stored fact,
so every figure can be explained from the same rows the breakdowns sum.
"""
