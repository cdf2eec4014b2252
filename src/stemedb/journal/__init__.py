"""The write-ahead journal: the source of truth. Format in docs/journal-format.md."""

from stemedb.journal.files import OS_FILES, FileOps, OsFiles
from stemedb.journal.journal import Journal, SegmentInfo
from stemedb.journal.lookup import RecordReader
from stemedb.journal.reader import scan
from stemedb.journal.record import (
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD,
    BadFrame,
    Frame,
    Record,
    chain_hash,
    decode_record,
    encode_record,
)
from stemedb.journal.recovery import RecoveryReport
from stemedb.journal.segment import (
    SEGMENT_HEADER_SIZE,
    encode_segment_header,
    list_segments,
    segment_name,
)

__all__ = [
    "FRAME_HEADER_SIZE",
    "MAX_PAYLOAD",
    "OS_FILES",
    "SEGMENT_HEADER_SIZE",
    "BadFrame",
    "FileOps",
    "Frame",
    "Journal",
    "Record",
    "RecordReader",
    "OsFiles",
    "RecoveryReport",
    "SegmentInfo",
    "chain_hash",
    "decode_record",
    "encode_record",
    "encode_segment_header",
    "list_segments",
    "scan",
    "segment_name",
]
