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

from dam_detection.tfrecord_codec.example import FeatureValue, decode_example, encode_example
from dam_detection.tfrecord_codec.framing import (
    GZIP_MAGIC,
    CorruptRecordError,
    RecordPosition,
    frame_record,
    is_gzip,
    iter_records,
    masked_crc32c,
    open_record_stream,
    write_records,
)

__all__ = [
    "GZIP_MAGIC",
    "CorruptRecordError",
    "FeatureValue",
    "RecordPosition",
    "decode_example",
    "encode_example",
    "frame_record",
    "is_gzip",
    "iter_records",
    "masked_crc32c",
    "open_record_stream",
    "write_records",
]
