"""The codec against TensorFlow's own TFRecord reader, writer and Example parser."""

import gzip
import io

import numpy as np
import pytest
import tensorflow as tf

from dam_detection.tfrecord_codec import (
    CorruptRecordError,
    decode_example,
    encode_example,
    frame_record,
    iter_records,
    open_record_stream,
)


def _features(rng: np.random.Generator) -> dict:
    return {
        "B2": rng.random((5, 5), dtype=np.float32),
        "label": 1.0,
        "point_index": np.array([7, -3], dtype=np.int64),
        "name": b"nid:CA00001",
    }


def test_encoded_example_parses_with_tensorflow():
    features = _features(np.random.default_rng(0))
    parsed = tf.io.parse_single_example(
        encode_example(features),
        {
            "B2": tf.io.FixedLenFeature([5, 5], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.float32),
            "point_index": tf.io.FixedLenFeature([2], tf.int64),
            "name": tf.io.FixedLenFeature([], tf.string),
        },
    )
    np.testing.assert_array_equal(parsed["B2"].numpy(), features["B2"])
    assert parsed["label"].numpy() == 1.0
    assert parsed["point_index"].numpy().tolist() == [7, -3]
    assert parsed["name"].numpy() == b"nid:CA00001"


def test_decodes_tensorflow_serialized_example():
    values = np.linspace(-1, 1, 9, dtype=np.float32)
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "B3": tf.train.Feature(float_list=tf.train.FloatList(value=values)),
                "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[2**40, -1])),
                "kind": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"dam", b"x"])),
            }
        )
    )
    decoded = decode_example(example.SerializeToString())
    np.testing.assert_array_equal(decoded["B3"], values)
    assert decoded["id"].tolist() == [2**40, -1]
    assert decoded["kind"] == [b"dam", b"x"]


def test_records_round_trip_through_tensorflow_gzip_reader(tmp_path):
    records = [encode_example({"v": float(i)}) for i in range(3)]
    path = tmp_path / "r.tfrecord.gz"
    with gzip.open(path, "wb") as out:
        for record in records:
            out.write(frame_record(record))
    read_by_tf = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    assert read_by_tf == records
    with open(path, "rb") as raw:
        assert list(iter_records(open_record_stream(raw))) == records


def test_reads_tensorflow_written_uncompressed_file(tmp_path):
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"abc")
        writer.write(b"")
    with open(path, "rb") as raw:
        assert list(iter_records(open_record_stream(raw))) == [b"abc", b""]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-3], "truncated"),
        (lambda b: b[:-5] + bytes([b[-5] ^ 0xFF]) + b[-4:], "data_crc_mismatch"),
    ],
)
def test_damage_keeps_every_record_before_it(damage, reason):
    blob = frame_record(b"first") + frame_record(b"second")
    stream = io.BufferedReader(io.BytesIO(damage(blob)))
    good = []
    with pytest.raises(CorruptRecordError) as error:
        for record in iter_records(stream):
            good.append(record)
    assert good == [b"first"]
    assert error.value.record_index == 1
    assert error.value.reason == reason
