"""The parts of PostgreSQL 15 that decide the order of an unordered ``GROUP BY GROUPING SETS`` result.

LiteLLM's ``/aggregated`` route runs one ``GROUPING SETS`` query without ``ORDER BY`` and fills its
breakdown dicts in the order the rows come back, so the key order of its answer, and the last bits of its
float sums, are PostgreSQL's. On an analyzed table PostgreSQL 15 plans that query as two
``MixedAggregate`` nodes over sorted input (``EXPLAIN`` of ``tests/golden/litellm/nullable_columns.json``'s
query; see :mod:`.activity`): the sets that are prefixes of the sort key come out
in sort order, the others from hash tables in the tables' iteration order, and every group sums its rows
in the sorted input's order. This module is that machinery, ported from the PostgreSQL 15 sources:

* :func:`pg_qsort` is ``src/include/lib/sort_template.h`` (tuplesort's in-memory quicksort), which is
  not stable: the order it leaves equal keys in decides the order floats are added in;
* :func:`hash_text` is ``hash_bytes`` (``src/common/hashfn.c``, Bob Jenkins' lookup3 on a little-endian
  machine), which ``hashtext`` applies to a text value under a deterministic collation;
* :func:`tuple_hash` is ``TupleHashTableHash_internal`` (``src/backend/executor/execGrouping.c``):
  rotate, xor each non-NULL column's hash, then ``murmurhash32``;
* :class:`HashTablePlacement` is ``src/include/lib/simplehash.h`` as ``tuplehash`` instantiates it:
  power-of-two buckets, linear probing with Robin Hood displacement, growth by doubling when the member
  count reaches the (truncated) 90 % threshold, and iteration backwards from the first empty bucket;
* :func:`estimate_groups` is the planner's ``estimate_num_groups`` (``src/backend/utils/adt/selfuncs.c``)
  for columns of one table, which sizes each hash table before the first row arrives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from functools import lru_cache
from typing import Any, Generic, TypeVar

_M32 = 0xFFFFFFFF
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _M32


@lru_cache(maxsize=1 << 16)  # group keys repeat their dates, keys and models
def hash_text(value: str) -> int:
    """``hashtext(value)`` as an unsigned 32-bit integer (``hash_bytes`` over its UTF-8 bytes)."""
    data = value.encode()
    remaining = len(data)
    a = b = c = (0x9E3779B9 + remaining + 3923095) & _M32
    offset = 0
    while remaining >= 12:
        a = (a + int.from_bytes(data[offset : offset + 4], "little")) & _M32
        b = (b + int.from_bytes(data[offset + 4 : offset + 8], "little")) & _M32
        c = (c + int.from_bytes(data[offset + 8 : offset + 12], "little")) & _M32
        a = (a - c) & _M32
        a ^= _rotl(c, 4)
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= _rotl(a, 6)
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= _rotl(b, 8)
        b = (b + a) & _M32
        a = (a - c) & _M32
        a ^= _rotl(c, 16)
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= _rotl(a, 19)
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= _rotl(b, 4)
        b = (b + a) & _M32
        offset += 12
        remaining -= 12
    tail = data[offset:]
    if remaining >= 9:  # the lowest byte of c is reserved for the length
        c = (c + (int.from_bytes(tail[8:], "little") << 8)) & _M32
    if remaining >= 5:
        b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    if remaining >= 1:
        a = (a + int.from_bytes(tail[:4], "little")) & _M32
    c ^= b
    c = (c - _rotl(b, 14)) & _M32
    a ^= c
    a = (a - _rotl(c, 11)) & _M32
    b ^= a
    b = (b - _rotl(a, 25)) & _M32
    c ^= b
    c = (c - _rotl(b, 16)) & _M32
    a ^= c
    a = (a - _rotl(c, 4)) & _M32
    b ^= a
    b = (b - _rotl(a, 14)) & _M32
    c ^= b
    return (c - _rotl(b, 24)) & _M32


def tuple_hash(values: Sequence[str | None]) -> int:
    """The hash a ``TupleHashTable`` gives a group key of text columns (NULL hashes as 0)."""
    key = 0  # hash_iv: 0 outside parallel workers
    for value in values:
        key = _rotl(key, 1)
        if value is not None:
            key ^= hash_text(value)
    key ^= key >> 16  # murmurhash32
    key = (key * 0x85EBCA6B) & _M32
    key ^= key >> 13
    key = (key * 0xC2B2AE35) & _M32
    return key ^ (key >> 16)


class HashTablePlacement(Generic[K]):
    """Where a ``tuplehash`` table puts its entries, for the order a scan of it returns them.

    Only placement is modelled (the caller keeps the groups' values in a dict): :meth:`insert` is called
    once per new key, :meth:`lookup` for every later row of a known key, because simplehash checks its
    growth threshold on every lookup-or-insert, not only on insertions.
    """

    _FILLFACTOR = 0.9
    _GROW_MAX_DIB = 25
    _GROW_MAX_MOVE = 150
    _GROW_MIN_FILLFACTOR = 0.1

    def __init__(self, nelements: float) -> None:
        self._resize_parameters(int(min(float(2**32), nelements / self._FILLFACTOR)))  # uint64 cast
        self._slots: list[tuple[int, K] | None] = [None] * self._size
        self.members = 0

    def _resize_parameters(self, requested: int) -> None:
        self._size = 1 << (max(requested, 2) - 1).bit_length()  # the next power of two, at least 2
        self._mask = self._size - 1
        self.grow_threshold = int(self._size * self._FILLFACTOR)  # a uint32 field: truncated

    def lookup(self) -> None:
        if self.members >= self.grow_threshold:
            self._grow(self._size * 2)

    def insert(self, key: K, hash_value: int) -> None:
        while True:
            self.lookup()
            slot = hash_value & self._mask
            if self._slots[slot] is None:  # the common case, kept cheap
                self._slots[slot] = (hash_value, key)
                self.members += 1
                return
            if self._try_insert(key, hash_value):
                return
            self.grow_threshold = 0  # a run grew too long: grow, then insert again

    def _try_insert(self, key: K, hash_value: int) -> bool:
        slots, mask = self._slots, self._mask
        current = hash_value & mask
        insert_distance = 0
        while True:
            entry = slots[current]
            if entry is None:
                slots[current] = (hash_value, key)
                self.members += 1
                return True
            entry_distance = (current - (entry[0] & mask)) & mask
            if insert_distance > entry_distance:
                empty = current
                moves = 0
                while True:
                    empty = (empty + 1) & mask
                    if slots[empty] is None:
                        break
                    moves += 1
                    if moves > self._GROW_MAX_MOVE and self._crowded():
                        return False
                while empty != current:  # shift the run forward by one
                    previous = (empty - 1) & mask
                    slots[empty] = slots[previous]
                    empty = previous
                slots[current] = (hash_value, key)
                self.members += 1
                return True
            current = (current + 1) & mask
            insert_distance += 1
            if insert_distance > self._GROW_MAX_DIB and self._crowded():
                return False

    def _crowded(self) -> bool:
        return self.members / self._size >= self._GROW_MIN_FILLFACTOR

    def _grow(self, new_size: int) -> None:
        old_size, old = self._size, self._slots
        self._resize_parameters(new_size)
        mask = self._mask
        start = 0
        for index, entry in enumerate(old):  # an empty bucket, or one at its optimal place (new mask)
            if entry is None or (entry[0] & mask) == index:
                start = index
                break
        slots: list[tuple[int, K] | None] = [None] * self._size
        for step in range(old_size):
            entry = old[(start + step) % old_size]
            if entry is not None:
                position = entry[0] & mask
                while slots[position] is not None:
                    position = (position + 1) & mask
                slots[position] = entry
        self._slots = slots

    def scan_order(self) -> list[K]:
        """The keys in the order a scan of the table returns them."""
        slots, mask = self._slots, self._mask
        end = next(index for index, entry in enumerate(slots) if entry is None)
        ordered = []
        current = end
        while True:
            entry = slots[current]
            current = (current - 1) & mask
            if entry is not None:
                ordered.append(entry[1])
            if current == end:
                return ordered


def pg_qsort(items: list[T], compare: Callable[[T, T], int]) -> None:
    """Sort ``items`` in place exactly as PostgreSQL's ``sort_template.h`` quicksort does: insertion
    sort below 7 elements, a presorted check, median-of-three (ninther above 40) pivots, Bentley-McIlroy
    three-way partitioning, recursion into the smaller side."""

    def med3(i: int, j: int, k: int) -> int:
        if compare(items[i], items[j]) < 0:
            if compare(items[j], items[k]) < 0:
                return j
            return k if compare(items[i], items[k]) < 0 else i
        if compare(items[j], items[k]) > 0:
            return j
        return i if compare(items[i], items[k]) < 0 else k

    def swap_run(i: int, j: int, count: int) -> None:
        for step in range(count):
            items[i + step], items[j + step] = items[j + step], items[i + step]

    def sort(lo: int, n: int) -> None:
        while True:
            if n < 7:
                for m in range(lo + 1, lo + n):
                    at = m
                    while at > lo and compare(items[at - 1], items[at]) > 0:
                        items[at], items[at - 1] = items[at - 1], items[at]
                        at -= 1
                return
            if all(compare(items[m - 1], items[m]) <= 0 for m in range(lo + 1, lo + n)):
                return
            middle = lo + n // 2
            if n > 7:
                left, right = lo, lo + n - 1
                if n > 40:
                    d = n // 8
                    left = med3(left, left + d, left + 2 * d)
                    middle = med3(middle - d, middle, middle + d)
                    right = med3(right - 2 * d, right - d, right)
                middle = med3(left, middle, right)
            items[lo], items[middle] = items[middle], items[lo]
            pa = pb = lo + 1
            pc = pd = lo + n - 1
            while True:
                while pb <= pc:
                    order = compare(items[pb], items[lo])
                    if order > 0:
                        break
                    if order == 0:
                        items[pa], items[pb] = items[pb], items[pa]
                        pa += 1
                    pb += 1
                while pb <= pc:
                    order = compare(items[pc], items[lo])
                    if order < 0:
                        break
                    if order == 0:
                        items[pc], items[pd] = items[pd], items[pc]
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                items[pb], items[pc] = items[pc], items[pb]
                pb += 1
                pc -= 1
            end = lo + n
            count = min(pa - lo, pb - pa)
            swap_run(lo, pb - count, count)
            count = min(pd - pc, end - pd - 1)
            swap_run(pb, end - count, count)
            smaller_left, smaller_right = pb - pa, pd - pc
            if smaller_left <= smaller_right:
                if smaller_left > 1:
                    sort(lo, smaller_left)
                if smaller_right <= 1:
                    return
                lo, n = end - smaller_right, smaller_right
            else:
                if smaller_right > 1:
                    sort(end - smaller_right, smaller_right)
                if smaller_left <= 1:
                    return
                n = smaller_left

    sort(0, len(items))


def compare_keys(left: tuple[Any, ...], right: tuple[Any, ...]) -> int:
    """Compare two sort keys already in ``(value is None, value or "")`` form (NULLS LAST; text under
    the C collation, whose byte order is Python's code point order)."""
    return 0 if left == right else -1 if left < right else 1


def column_ndistinct(values: Sequence[str | None], table_rows: int) -> float:
    """The planner's ``n_distinct`` of a column when ANALYZE read every row (a table of at most 30,000
    rows): its number of distinct non-NULL values, or, for an all-NULL column (``stadistinct`` 0,
    "unknown"), ``get_variable_numdistinct``'s fallback."""
    distinct = len({value for value in values if value is not None})
    if distinct:
        return float(distinct)
    return float(table_rows) if table_rows < 200 else 200.0


def _clamp_row_est(rows: float) -> float:
    return 1.0 if rows <= 1.0 else float(math.floor(rows + 0.5))  # rint() on a positive value


def estimate_groups(
    ndistincts: Sequence[float], table_rows: int, selected_rows: int, input_rows: int
) -> float:
    """``estimate_num_groups`` for a grouping set whose columns all come from one table: the product of
    their ``n_distinct``, clamped to a tenth of the table (but not below the largest one) when there are
    several, scaled by the restriction's selectivity, and clamped to the input."""
    if table_rows <= 0 or not ndistincts:
        return 1.0
    distinct = math.prod(ndistincts)
    clamp = float(table_rows)
    if len(ndistincts) > 1:
        clamp *= 0.1
        if clamp < max(ndistincts):
            clamp = min(max(ndistincts), float(table_rows))
    distinct = min(distinct, clamp)
    if distinct > 0 and selected_rows < table_rows:
        distinct *= 1 - ((table_rows - selected_rows) / table_rows) ** (table_rows / distinct)
    groups = math.ceil(_clamp_row_est(distinct))
    return float(max(1, min(groups, _clamp_row_est(input_rows))))
