"""GraphQL types of the insight fields on ``Usage``: budgets, forecast, anomalies and movers."""
