"""The plain-text table every benchmark prints: first column left-aligned, the rest right."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(cols: Sequence[tuple[str, int]], rows: Sequence[Sequence[object]]) -> None:
    """`cols` are (heading, width); each row has one value per column."""
    print("".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(cols)))
    for values in rows:
        print("".join(f"{v!s:<{w}}" if i == 0 else f"{v!s:>{w}}"
                      for i, (v, (_, w)) in enumerate(zip(values, cols, strict=True))))  # fmt: skip
