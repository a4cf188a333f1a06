"""The FHWA National Bridge Inventory fixed-width ASCII release, read as raw text fields.

Each record is 432 characters. This dataset only cuts the fields ``ingest_points`` needs out of
each line (1-based, inclusive columns from the FHWA Recording and Coding Guide); turning
item 16/17 degrees-minutes-seconds into decimal degrees and filtering on item 38 happen in the
pipeline, where they are counted and reported.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

#: Characters in one NBI record.
NBI_RECORD_LENGTH = 432

#: Field name to 1-based inclusive (first, last) column.
NBI_FIELDS: dict[str, tuple[int, int]] = {
    "state_code": (1, 3),  # item 1
    "structure_number": (4, 18),  # item 8
    "features_intersected": (38, 61),  # item 6A
    "latitude_dms": (130, 137),  # item 16, DDMMSSss
    "longitude_dms": (138, 146),  # item 17, DDDMMSSss, west positive
    "year_built": (157, 160),  # item 27
    "navigation_control": (189, 189),  # item 38: 0 none, 1 exists, N no waterway
}


def parse_nbi_lines(lines: list[str], source_file: str = "<memory>") -> pd.DataFrame:
    """Cut the NBI fields out of fixed-width records.

    Args:
        lines: Records without line terminators; blank lines are skipped.
        source_file: File name for error messages and ``attrs["source_file"]``.

    Returns:
        One row per record with the string columns of :data:`NBI_FIELDS` (surrounding blanks
        stripped, except in the coordinate fields whose width matters) and ``line_number``
        (1-based line in the file).

    Raises:
        DatasetError: If a record is too short to hold item 38, naming the file and line.
    """
    last_column = max(last for _, last in NBI_FIELDS.values())
    numbers: list[int] = []
    kept: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) < last_column:
            raise DatasetError(
                f"{source_file} line {number}: NBI record has {len(line)} characters, expected "
                f"{NBI_RECORD_LENGTH} (at least {last_column}); is this the comma-delimited "
                "release? Use the fixed-width ASCII file or read it with VectorPointsDataset "
                "(reader: table)"
            )
        numbers.append(number)
        kept.append(line)
    series = pd.Series(kept, dtype="string")
    frame = pd.DataFrame({"line_number": pd.Series(numbers, dtype="int64")})
    for name, (first, last) in NBI_FIELDS.items():
        field = series.str.slice(first - 1, last)
        if not name.endswith("_dms"):
            field = field.str.strip()
        frame[name] = field.astype(object).to_numpy()
    frame.attrs["source_file"] = source_file
    return frame


class NBIAsciiDataset(AbstractDataset[str, pd.DataFrame]):
    """An NBI fixed-width ASCII file (FHWA's per-state ``<ST>18.txt``).

    Loads the parsed fields; saves text (the simulated planet publishes its bridges this way).

    Example catalog entry::

        nbi_ascii_bridges:
          type: dam_detection.datasets.NBIAsciiDataset
          filepath: data/01_raw/points/nbi/AL18.txt
    """

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: Local path of the ASCII file.
            load_args: ``encoding`` (default ``latin-1``, as FHWA files are not UTF-8).
            metadata: Free-form metadata, ignored by Kedro.
        """
        protocol, path = get_protocol_and_path(filepath)
        if protocol not in ("file", "local"):
            raise DatasetError(f"NBIAsciiDataset reads local files only, got {filepath!r}")
        self._filepath = PurePosixPath(path)
        self._load_args = {"encoding": "latin-1", **(load_args or {})}
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """Parse the fixed-width records (see :func:`parse_nbi_lines`)."""
        path = get_filepath_str(self._filepath, "file")
        if not Path(path).exists():
            raise DatasetError(f"NBI file {path!r} does not exist: fix its catalog filepath")
        text = Path(path).read_text(encoding=self._load_args["encoding"])
        return parse_nbi_lines(text.splitlines(), source_file=path)

    def save(self, data: str) -> None:
        """Write fixed-width records (one per line) atomically, in the load encoding."""
        path = Path(get_filepath_str(self._filepath, "file"))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(data, encoding=self._load_args["encoding"])
        os.replace(temporary, path)

    def _exists(self) -> bool:
        return Path(str(self._filepath)).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_args": self._load_args}
