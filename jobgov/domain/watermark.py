"""Remembering ids without keeping them all: a watermark below which every id was seen.

opencode's ids ascend: a prefix (``prt_``, ``per_``), then a fixed-width hex clock, then random
text, so a later id sorts after an earlier one of the same kind. A job that has counted
thousands of steps carries, across continue-as-new, only the newest ids and the highest id
below them: an id at or below that watermark was counted (or decided) already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def _shape(item_id: str) -> tuple[str, int]:
    return item_id[:4], len(item_id)


def covered(item_id: str, mark: str | None) -> bool:
    """``item_id`` sorts at or before ``mark`` (ids of another kind or shape are never covered)."""
    return mark is not None and _shape(item_id) == _shape(mark) and item_id <= mark


def compact(ids: Iterable[str], mark: str | None, keep: int, below: str | None = None) -> tuple[list[str], str | None]:
    """Keep the newest ``keep`` ids one by one and raise the watermark over the older ones.

    Args:
        ids: The ids remembered one by one.
        mark: The watermark so far.
        keep: How many of the newest ids to keep.
        below: Only ids before this one may go under the watermark (the oldest ask still
            pending must never be covered).

    Returns:
        The ids kept, oldest first, and the new watermark. Only ids of the watermark's shape
        (or, without one, of the commonest shape) go under it; others are always kept.
    """
    ordered = sorted(set(ids))
    if not ordered:
        return [], mark
    shape = _shape(mark) if mark is not None else Counter(map(_shape, ordered)).most_common(1)[0][0]
    comparable = [i for i in ordered if _shape(i) == shape]
    drop = comparable[: max(0, len(comparable) - keep)]
    if below is not None:
        drop = [i for i in drop if i < below]
    if not drop:
        return ordered, mark
    dropped = set(drop)
    return [i for i in ordered if i not in dropped], max(drop[-1], mark) if mark is not None else drop[-1]
