"""The LiteLLM-compatible server with every fault of :class:`Faults` applied, the body rewrites
(``skew_aggregated_dates``) included: ``running_litellm`` applies those that need no body rewrite only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from server.litellm_compat import Faults, LiteLLMStore, create_litellm_app
from server.litellm_compat.faults import BodyFaults
from server.local_services import serving


@contextlib.contextmanager
def running_faulty_litellm(store: LiteLLMStore, faults: Faults) -> Iterator[str]:
    """Serve the app, wrapped in :class:`BodyFaults`, on 127.0.0.1; yields the base URL, stops on exit."""
    app = create_litellm_app(store, faults)
    with serving(BodyFaults(app, faults), on_stop=app.state.stopping.set) as url:
        yield url
