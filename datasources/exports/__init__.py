"""Exports: the ``exports`` table and the export run (``records``), the grouped query that streams rows
(``query``), the file it writes to (``sink``), and the writers: one module per format (``csv``, ``json``
for JSON and NDJSON, ``xlsx``, ``parquet``) on a shared vocabulary of columns (``columns``), and
``writers``, which picks the one for a format.

Reads facts through its own streaming query; never fetches days itself (the caller makes them present).
"""
