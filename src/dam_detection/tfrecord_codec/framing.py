"""TFRecord framing, read and written without TensorFlow.

``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian, optionally inside a gzip stream (sniffed: Earth Engine's ``.gz`` files sometimes
arrive uncompressed).
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import google_crc32c

GZIP_MAGIC = b"\x1f\x8b"
_CRC_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


class CorruptRecordError(ValueError):
    """A TFRecord stream is damaged at ``record_index`` (every earlier record was good).

    Attributes:
        record_index: 0-based position of the first record that could not be read.
        offset: Byte offset of that record in the uncompressed stream.
        reason: Short machine-friendly reason, e.g. ``truncated`` or ``data_crc_mismatch``.
    """

    def __init__(self, record_index: int, offset: int, reason: str, detail: str = "") -> None:
        self.record_index = record_index
        self.offset = offset
        self.reason = reason
        message = f"record {record_index} at byte {offset}: {reason}"
        super().__init__(f"{message} ({detail})" if detail else message)


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """Frame one serialized message as a TFRecord entry."""
    length = _LENGTH.pack(len(data))
    return b"".join(
        (length, _CRC.pack(masked_crc32c(length)), data, _CRC.pack(masked_crc32c(data)))
    )


def is_gzip(head: bytes) -> bool:
    """Whether the first bytes of a file are a gzip header (sniffed, never trusted from a name)."""
    return head[:2] == GZIP_MAGIC


def open_record_stream(fileobj: BinaryIO) -> BinaryIO:
    """Wrap a binary file so it reads uncompressed TFRecord bytes, gzip or not.

    Earth Engine documents table exports as gzip but real ones arrive uncompressed too, so the
    compression is sniffed from the magic bytes.
    """
    # fsspec's and gzip's file objects are binary streams without being typing.BinaryIO.
    raw: Any = fileobj
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if is_gzip(buffered.peek(2)):
        stream: Any = gzip.GzipFile(fileobj=buffered, mode="rb")
        return stream
    return buffered


def iter_records(stream: BinaryIO, *, verify_crc: bool = True) -> Iterator[bytes]:
    """Yield the serialized messages of an uncompressed (or gzip-wrapped) TFRecord stream.

    Args:
        stream: Stream from :func:`open_record_stream`.
        verify_crc: Check both checksums of every record.

    Yields:
        Each record's payload, in file order.

    Raises:
        CorruptRecordError: At the first damaged record, after every good record before it.
    """
    index = 0
    offset = 0
    while True:
        try:
            header = stream.read(12)
        except (EOFError, OSError, zlib.error) as error:
            raise CorruptRecordError(
                index, offset, "truncated_compressed_stream", str(error)
            ) from error
        if not header:
            return
        if len(header) < 12:
            raise CorruptRecordError(index, offset, "truncated", "incomplete length header")
        length_bytes, length_crc = header[:8], _CRC.unpack(header[8:])[0]
        if verify_crc and masked_crc32c(length_bytes) != length_crc:
            raise CorruptRecordError(index, offset, "length_crc_mismatch")
        (length,) = _LENGTH.unpack(length_bytes)
        try:
            body = stream.read(length + 4)
        except (EOFError, OSError, zlib.error) as error:
            raise CorruptRecordError(
                index, offset, "truncated_compressed_stream", str(error)
            ) from error
        if len(body) < length + 4:
            raise CorruptRecordError(
                index, offset, "truncated", f"expected {length} bytes, got {max(len(body) - 4, 0)}"
            )
        data, data_crc = body[:length], body[length:]
        del body  # hold one copy of the record between yields, not two
        if verify_crc and masked_crc32c(data) != _CRC.unpack(data_crc)[0]:
            raise CorruptRecordError(index, offset, "data_crc_mismatch")
        yield data
        index += 1
        offset += 12 + length + 4


def write_records(fileobj: BinaryIO, records: Iterable[bytes]) -> int:
    """Write framed records to an (already compressed or plain) binary file.

    Returns:
        The number of records written.
    """
    count = 0
    for record in records:
        fileobj.write(frame_record(record))
        count += 1
    return count


@dataclass(frozen=True)
class RecordPosition:
    """Where a record came from: its file and its 0-based position in that file."""

    path: str
    index: int
