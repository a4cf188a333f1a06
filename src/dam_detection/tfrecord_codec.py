"""TFRecord files and ``tf.train.Example`` messages, read and written without TensorFlow.

Earth Engine writes its table and image exports as TFRecord files of ``tf.train.Example``
messages. Rendering, exporting, validating and sharding happen in worker processes where
importing TensorFlow (about 1 GB and 4 s each) would cost more than the work; this module
implements the two small formats directly, with NumPy for the float payloads, and the tests
check every byte against TensorFlow's own reader and parser.

Formats:
    TFRecord framing: ``uint64 length | uint32 masked_crc32c(length) | data | uint32
    masked_crc32c(data)``, little-endian, optionally inside a gzip stream.
    Example: ``Example{features=1: Features{feature=1: map<string, Feature>}}`` where a Feature
    holds one of ``bytes_list=1``, ``float_list=2`` (packed float32) or ``int64_list=3``.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c
import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
_CRC_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")

FeatureValue = np.ndarray | list[bytes]


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


# --- TFRecord framing -------------------------------------------------------------------------


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
    buffered = fileobj if isinstance(fileobj, io.BufferedReader) else io.BufferedReader(fileobj)
    if is_gzip(buffered.peek(2)):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


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


# --- protobuf wire format for tf.train.Example ------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take 10 bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buffer: memoryview, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if position >= len(buffer):
            raise ValueError("message ends inside a varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _encode_feature(value: object) -> bytes:
    if isinstance(value, bytes | str):
        value = [value]
    if isinstance(value, list | tuple) and value and isinstance(value[0], bytes | str):
        items = b"".join(
            _field(1, item.encode() if isinstance(item, str) else item) for item in value
        )
        return _field(1, items)
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        packed = b"".join(_varint(int(v)) for v in array.ravel())
        return _field(3, _field(1, packed) if array.size else b"")
    floats = np.ascontiguousarray(array, dtype="<f4").ravel()
    return _field(2, _field(1, floats.tobytes()) if floats.size else b"")


def encode_example(features: Mapping[str, object]) -> bytes:
    """Serialize a ``tf.train.Example``.

    Args:
        features: Name to value. Float arrays (any shape, flattened row-major) become a
            float_list; integer arrays an int64_list; ``bytes``/``str`` or lists of them a
            bytes_list. Python floats and ints become one-value lists.

    Returns:
        The serialized message, byte-compatible with ``tf.train.Example.SerializeToString``
        up to map ordering (keys are written sorted).
    """
    entries = []
    for name in sorted(features):
        entry = _field(1, name.encode()) + _field(2, _encode_feature(features[name]))
        entries.append(_field(1, entry))
    return _field(1, b"".join(entries))


def _iter_fields(buffer: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    position = 0
    while position < len(buffer):
        tag, position = _read_varint(buffer, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 2:
            length, position = _read_varint(buffer, position)
            if position + length > len(buffer):
                raise ValueError("length-delimited field runs past the end of the message")
            yield number, wire_type, buffer[position : position + length]
            position += length
        elif wire_type == 0:
            value, position = _read_varint(buffer, position)
            yield number, wire_type, value
        elif wire_type == 5:
            if position + 4 > len(buffer):
                raise ValueError("fixed32 field runs past the end of the message")
            yield number, wire_type, buffer[position : position + 4]
            position += 4
        elif wire_type == 1:
            if position + 8 > len(buffer):
                raise ValueError("fixed64 field runs past the end of the message")
            yield number, wire_type, buffer[position : position + 8]
            position += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def _decode_float_list(buffer: memoryview) -> np.ndarray:
    parts = []
    for number, wire_type, payload in _iter_fields(buffer):
        if number != 1:
            continue
        if wire_type == 2:  # packed
            if len(payload) % 4:
                raise ValueError("packed float_list length is not a multiple of 4")
            parts.append(np.frombuffer(payload, dtype="<f4"))
        elif wire_type == 5:  # one unpacked float
            parts.append(np.frombuffer(payload, dtype="<f4"))
    if not parts:
        return np.empty(0, dtype=np.float32)
    return parts[0].astype(np.float32) if len(parts) == 1 else np.concatenate(parts)


def _to_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_int64_list(buffer: memoryview) -> np.ndarray:
    values: list[int] = []
    for number, wire_type, payload in _iter_fields(buffer):
        if number != 1:
            continue
        if wire_type == 2:
            position = 0
            while position < len(payload):
                value, position = _read_varint(payload, position)
                values.append(_to_int64(value))
        elif wire_type == 0:
            values.append(_to_int64(payload))  # type: ignore[arg-type]
    return np.array(values, dtype=np.int64)


def _decode_feature(buffer: memoryview) -> FeatureValue:
    for number, _, payload in _iter_fields(buffer):
        if number == 1:
            return [bytes(item) for n, _, item in _iter_fields(payload) if n == 1]  # type: ignore[arg-type]
        if number == 2:
            return _decode_float_list(payload)  # type: ignore[arg-type]
        if number == 3:
            return _decode_int64_list(payload)  # type: ignore[arg-type]
    return np.empty(0, dtype=np.float32)  # a Feature with no kind set


def decode_example(data: bytes | memoryview) -> dict[str, FeatureValue]:
    """Parse a serialized ``tf.train.Example`` into NumPy arrays.

    Args:
        data: The serialized message.

    Returns:
        Feature name to value: writable float32 arrays for float_list, int64 arrays for
        int64_list, lists of bytes for bytes_list.

    Raises:
        ValueError: If the bytes are not a well-formed Example.
    """
    features: dict[str, FeatureValue] = {}
    for number, _, features_buffer in _iter_fields(memoryview(data)):
        if number != 1:
            continue
        for entry_number, _, entry in _iter_fields(features_buffer):  # type: ignore[arg-type]
            if entry_number != 1:
                continue
            name = None
            value: FeatureValue = np.empty(0, dtype=np.float32)
            for field_number, _, payload in _iter_fields(entry):  # type: ignore[arg-type]
                if field_number == 1:
                    name = bytes(payload).decode()  # type: ignore[arg-type]
                elif field_number == 2:
                    value = _decode_feature(payload)  # type: ignore[arg-type]
            if name is None:
                raise ValueError("Example map entry without a feature name")
            features[name] = value
    return features


@dataclass(frozen=True)
class RecordPosition:
    """Where a record came from: its file and its 0-based position in that file."""

    path: str
    index: int
