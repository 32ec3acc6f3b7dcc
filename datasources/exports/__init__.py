"""Exports: the ``exports`` table and the export run (``records``), the grouped query that streams rows
(``query``), the file it writes to (``sink``), and the writers, one per format (``writers``, ``xlsx``).

Reads facts through its own streaming query; never fetches days itself (the caller makes them present).
"""
