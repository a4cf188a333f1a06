"""``tf.train.Example`` messages, encoded and decoded without TensorFlow.

``Example{features=1: Features{feature=1: map<string, Feature>}}`` where a Feature holds one of
``bytes_list=1``, ``float_list=2`` (packed float32) or ``int64_list=3``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

FeatureValue = np.ndarray | list[bytes]


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


def _delimited(payload: memoryview | int) -> memoryview:
    """A length-delimited field's bytes (a varint where a message belongs is malformed)."""
    if isinstance(payload, int):
        raise ValueError("a varint where a length-delimited field belongs")
    return payload


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
            packed = _delimited(payload)
            if len(packed) % 4:
                raise ValueError("packed float_list length is not a multiple of 4")
            parts.append(np.frombuffer(packed, dtype="<f4"))
        elif wire_type == 5:  # one unpacked float
            parts.append(np.frombuffer(_delimited(payload), dtype="<f4"))
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
            packed, position = _delimited(payload), 0
            while position < len(packed):
                value, position = _read_varint(packed, position)
                values.append(_to_int64(value))
        elif wire_type == 0 and isinstance(payload, int):
            values.append(_to_int64(payload))
    return np.array(values, dtype=np.int64)


def _decode_feature(buffer: memoryview) -> FeatureValue:
    for number, _, payload in _iter_fields(buffer):
        if number == 1:
            items = _iter_fields(_delimited(payload))
            return [bytes(_delimited(item)) for n, _, item in items if n == 1]
        if number == 2:
            return _decode_float_list(_delimited(payload))
        if number == 3:
            return _decode_int64_list(_delimited(payload))
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
        for entry_number, _, entry in _iter_fields(_delimited(features_buffer)):
            if entry_number != 1:
                continue
            name = None
            value: FeatureValue = np.empty(0, dtype=np.float32)
            for field_number, _, payload in _iter_fields(_delimited(entry)):
                if field_number == 1:
                    name = bytes(_delimited(payload)).decode()
                elif field_number == 2:
                    value = _decode_feature(_delimited(payload))
            if name is None:
                raise ValueError("Example map entry without a feature name")
            features[name] = value
    return features
