"""A small compressed body must not inflate without bound (a decompression bomb)."""

from __future__ import annotations

import subprocess
import sys
import zlib

import cramjam
import pytest

from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Compression, Record, build_batch, decompress, iter_records


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_bodies_within_the_limit_inflate_whole(codec):
    records = [Record(i, 1000, b"k", b"v" * 3000) for i in range(2000)]  # ~6 MB, past the first guess
    batch = build_batch(records, compression=codec)
    assert [bytes(r.value) for r in iter_records(batch)] == [b"v" * 3000] * 2000


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_a_body_past_the_limit_is_corrupt(codec):
    body = memoryview(bytes(cramjam.__dict__[codec.name.lower()].compress(b"\0" * (8 << 20))))
    with pytest.raises(KafkaError) as raised:
        decompress(codec, body, limit=1 << 20)
    assert raised.value.code == ErrorCode.CORRUPT_MESSAGE


def test_a_bomb_does_not_grow_memory_past_the_limit(tmp_path):
    # 1 GiB of zeros in ~32 KB, compressed in chunks so that building it is cheap too.
    compressor = cramjam.zstd.Compressor()
    chunk = b"\0" * (1 << 20)
    for _ in range(1024):
        compressor.compress(chunk)
    bomb = tmp_path / "bomb.zst"
    bomb.write_bytes(bytes(compressor.finish()))
    probe = (
        "import sys\n"
        "from ottla.wire.records import Compression, decompress\n"
        "from ottla.wire.errors import KafkaError\n"
        "data = memoryview(open(sys.argv[1], 'rb').read())\n"
        "try:\n"
        "    decompress(Compression.ZSTD, data, limit=16 << 20)\n"
        "except KafkaError:\n"
        "    pass\n"
        # VmHWM belongs to this process's own memory map (new at exec); getrusage's
        # ru_maxrss would carry the parent's peak over.
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    peak_kib = int(subprocess.run([sys.executable, "-c", probe, str(bomb)], capture_output=True, text=True, check=True).stdout)
    assert peak_kib < 200 * 1024  # the 1 GiB body was never held


def test_zstd_inside_a_legacy_message_set_is_refused():
    from kafka.record.legacy_records import LegacyRecordBatchBuilder

    from ottla.wire.records import convert_legacy

    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=1000, key=b"k", value=b"v")
    data = bytearray(builder.build())
    data[17] |= 0x04  # attributes: claim zstd (codec 4)
    data[12:16] = zlib.crc32(data[16:]).to_bytes(4, "big")  # and make the CRC agree
    with pytest.raises(KafkaError) as raised:
        convert_legacy(bytes(data))
    assert raised.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
