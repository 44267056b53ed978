"""The benchmarks' shared data: the seeded standard batch and replies of hpgfast._sample."""

from hpgfast._sample import (
    STANDARD_BATCH,
    STANDARD_REPLY,
    query_pairs,
    standard_batch,
    standard_send_reply,
    standard_status_reply,
)

__all__ = [
    "STANDARD_BATCH",
    "STANDARD_REPLY",
    "query_pairs",
    "standard_batch",
    "standard_send_reply",
    "standard_status_reply",
]
