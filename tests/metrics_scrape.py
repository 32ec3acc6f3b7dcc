"""Reading ``/metrics`` in tests: the samples of one scrape, and what changed between two."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape in the Prometheus text format, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when it is absent (a labelled counter appears once it was counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def changes(before: Samples, after: Samples, prefix: str) -> dict[tuple[str, Labels], float]:
    """The samples named ``prefix…`` whose value moved, with how much."""
    names = {key for key in (*before, *after) if key[0].startswith(prefix)}
    moved = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in names}
    return {key: delta for key, delta in moved.items() if delta}


def labelled(moved: Mapping[tuple[str, Labels], float], name: str) -> dict[Labels, float]:
    """The changes of one metric, by labels."""
    return {labels: delta for (found, labels), delta in moved.items() if found == name}


def key(**labels: str) -> Labels:
    return frozenset(labels.items())
