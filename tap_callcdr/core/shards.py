"""Which shard of a sharded run reads an account (`shard_index` of `shard_count`).

An account's shard is the jump consistent hash of a stable 64-bit hash of
"<vendor>/<name>": each account is in exactly one shard, adding accounts moves none, and
going from N to N+1 shards moves only about 1/(N+1) of them (those to the new shard).
Python's own `hash()` is salted per process, so the key is the first 8 bytes of sha256.
"""

from __future__ import annotations

import hashlib

MASK64 = (1 << 64) - 1
JUMP_MULTIPLIER = 2862933555777941757  # the 64-bit LCG of the paper


def jump_hash(key: int, buckets: int) -> int:
    """The bucket in [0, buckets) of 64-bit `key`: J. Lamping, E. Veach, "A Fast, Minimal
    Memory, Consistent Hash Algorithm" (2014, arXiv:1406.2294), its listing in Python."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * JUMP_MULTIPLIER + 1) & MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def account_key(vendor: str, name: str) -> int:
    """The stable 64-bit hash of an account: the same in every process and on every machine."""
    digest = hashlib.sha256(f"{vendor}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(vendor: str, name: str, count: int) -> int:
    """The shard (0-based, of `count`) that reads account `name` of `vendor`."""
    return jump_hash(account_key(vendor, name), count)
