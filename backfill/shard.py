"""Which keys are this worker's: `--shard I/N`, by default from the AWS Batch array job."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from indexer.errors import UsageError
from indexer.record import record_id

ARRAY_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by AWS Batch on each child of an array job: 0..size-1
ARRAY_SIZE = "PIXDEX_SHARDS"  # the array size; Batch does not tell a child, so the job passes it


class ShardError(UsageError):
    pass


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based, as people count) of `count`. Shards are disjoint and together cover
    every key: a key belongs to shard `h % count + 1`, `h` a stable hash of its canonical URI (the
    record id's), so the same key lands on the same shard in every run and on every machine."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ShardError(f"shard {self.index}/{self.count}: need 1 <= I <= N")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, uri: str) -> bool:
        return self.whole or int(record_id(uri)[:16], 16) % self.count == self.index - 1

    def owns_file(self, position: int) -> bool:
        """By position in a list of files (an inventory's data files): file i is shard i % N + 1's."""
        return position % self.count == self.index - 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ShardError(f"--shard {text!r}: expected I/N, e.g. 2/8")
        return cls(int(m[1]), int(m[2]))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Shard:
        """AWS Batch array child: `AWS_BATCH_JOB_ARRAY_INDEX` (0-based) and `PIXDEX_SHARDS`."""
        env = os.environ if env is None else env
        index, size = env.get(ARRAY_INDEX), env.get(ARRAY_SIZE)
        if index is None:
            return cls()
        if size is None:
            raise ShardError(f"{ARRAY_INDEX}={index} but {ARRAY_SIZE} is not set: pass the array size to the "
                             f"job (the bundled job definition does), or give --shard I/N")
        if not (index.isdigit() and size.isdigit()):
            raise ShardError(f"{ARRAY_INDEX}={index!r}, {ARRAY_SIZE}={size!r}: expected integers")
        return cls(int(index) + 1, int(size))
