"""The write-ahead journal: the source of truth. Format in docs/journal-format.md."""

from stemedb.journal.journal import Journal, SegmentInfo
from stemedb.journal.reader import scan
from stemedb.journal.record import (
    MAX_PAYLOAD,
    BadFrame,
    Frame,
    Record,
    chain_hash,
    decode_record,
    encode_record,
)
from stemedb.journal.recovery import RecoveryReport
from stemedb.journal.segment import encode_segment_header, segment_name

__all__ = [
    "MAX_PAYLOAD",
    "BadFrame",
    "Frame",
    "Journal",
    "Record",
    "RecoveryReport",
    "SegmentInfo",
    "chain_hash",
    "decode_record",
    "encode_record",
    "encode_segment_header",
    "scan",
    "segment_name",
]
