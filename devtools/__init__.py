"""Tools for the demo, the tests and the benchmarks, not for a deployment: the LiteLLM-compatible server
(``litellm_compat``), the demo and its seeded data, and private PostgreSQL/Redis servers on loopback
(``local_services``). The product's layers never import them; the CLI's ``demo`` command does.
"""
