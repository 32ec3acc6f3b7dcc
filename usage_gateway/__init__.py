"""usage-gateway: a GraphQL analytics gateway for LLM usage recorded by a LiteLLM proxy.

One import namespace for the whole product. Its rooms are the repository's top-level folders, linked
here (``usage_gateway/schema -> ../schema``), and the imports only look down:

- ``server``: the web app (Starlette: auth, GraphQL view, downloads, health) and the CLI;
- ``schema``: Strawberry types, inputs, scalars and the safety extensions;
- ``resolvers``: one function per field, and the DataLoaders; no SQL;
- ``datasources``: everything that does I/O: LiteLLM, the day cache, the facts, exports, the directory;
- ``migrations``: numbered SQL files and their runner;
- ``devtools``: the LiteLLM-compatible server, the demo and its data, local Postgres/Redis; for the
  demo, the tests and the benchmarks, never imported by the layers above;
- ``errors``: the public error tree, with a stable code per error.
"""
