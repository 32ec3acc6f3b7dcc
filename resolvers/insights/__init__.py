"""Resolving the insight fields (budgets, forecast, anomalies, movers) under the viewer's scope."""
