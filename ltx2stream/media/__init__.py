"""Media layer: the per-session fMP4 encoder (H.264 + AAC), plain MP4 writing, and an MP4 box parser.

SessionEncoder  persistent encoders -> cached init segment + continuous moof/mdat fragments per segment
write_mp4 / Mp4Writer  non-fragmented MP4 for offline renders, chunk by chunk
Mp4Parts  part files of a long render and their concatenation (injected into session/render.py)
parse_boxes and friends  ISO-BMFF reading for tests and the codec string
"""

from ltx2stream.media.encoder import MediaFragment, SessionEncoder
from ltx2stream.media.fmp4 import (
    Box,
    TrackRun,
    base_decode_time,
    codec_string,
    find_box,
    fragment_runs,
    is_sync,
    parse_boxes,
    read_traf,
    split_init,
    timescale,
    track_timescales,
    walk,
)
from ltx2stream.media.mp4file import Mp4Writer, write_mp4
from ltx2stream.media.parts import Mp4Parts

__all__ = [
    "Box",
    "MediaFragment",
    "Mp4Parts",
    "Mp4Writer",
    "SessionEncoder",
    "TrackRun",
    "base_decode_time",
    "codec_string",
    "find_box",
    "fragment_runs",
    "is_sync",
    "parse_boxes",
    "read_traf",
    "split_init",
    "timescale",
    "track_timescales",
    "walk",
    "write_mp4",
]
