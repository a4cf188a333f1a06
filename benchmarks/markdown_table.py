"""The benchmarks' result rows as a Markdown table, ready for their ``results_*.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def print_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """Print ``rows`` as a Markdown table with one column per key, in that order."""
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[key]) for key in keys) + " |")
