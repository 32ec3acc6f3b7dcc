"""The directory: users and API keys, looked up in batches for the DataLoaders (``lookups``) and synced
from LiteLLM's ``/key/list`` and ``/user/list`` (``sync``). Keys are revoked, never deleted.
"""
