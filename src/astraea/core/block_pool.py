"""A logical pool of fixed-size KV blocks for one memory tier (accelerator or host).

Blocks are plain integer ids; this pool only tracks which are free and who owns the rest.
The engine maps the same ids onto tensors; the simulator never needs tensors at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


class OutOfBlocksError(RuntimeError):
    """Raised when an allocation asks for more blocks than the pool has free."""


class BlockPool:
    """Free list plus an owner per block; ``check_integrity`` proves nothing leaked."""

    __slots__ = ("_free", "_owner", "name", "num_blocks")

    def __init__(self, num_blocks: int, name: str = "device") -> None:
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        self.name = name
        self.num_blocks = num_blocks
        # Pop from the end: low ids are handed out first, which keeps traces readable.
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))
        self._owner: list[str | None] = [None] * num_blocks

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self._free)

    def allocate(self, count: int, owner: str) -> list[int]:
        """Take ``count`` free blocks for ``owner``."""
        if count > len(self._free):
            raise OutOfBlocksError(
                f"{self.name} pool: {count} blocks requested, {len(self._free)} free"
            )
        free = self._free
        taken = free[len(free) - count :] if count else []
        del free[len(free) - count :]
        owners = self._owner
        for block in taken:
            owners[block] = owner
        return taken

    def free(self, blocks: Iterable[int]) -> None:
        """Return blocks to the free list; freeing a block that is not in use is a bug."""
        owners = self._owner
        for block in blocks:
            if owners[block] is None:
                raise ValueError(f"{self.name} pool: block {block} freed twice")
            owners[block] = None
            self._free.append(block)

    def check_integrity(self, tables: Mapping[str, Sequence[int]] | None = None) -> None:
        """Assert free + used == total, no block both free and owned, and (given the owners'
        block tables) that every used block is in exactly one table of its owner."""
        free_set = set(self._free)
        if len(free_set) != len(self._free):
            raise AssertionError(f"{self.name} pool: a block is on the free list twice")
        used = [b for b, o in enumerate(self._owner) if o is not None]
        if len(used) + len(free_set) != self.num_blocks:
            raise AssertionError(
                f"{self.name} pool: {len(used)} used + {len(free_set)} free != {self.num_blocks}"
            )
        if free_set.intersection(used):
            raise AssertionError(f"{self.name} pool: a block is both free and owned")
        if tables is None:
            return
        seen: set[int] = set()
        for owner, table in tables.items():
            for block in table:
                if block in seen:
                    raise AssertionError(f"{self.name} pool: block {block} is in two tables")
                seen.add(block)
                if self._owner[block] != owner:
                    raise AssertionError(
                        f"{self.name} pool: block {block} listed for {owner!r} "
                        f"but owned by {self._owner[block]!r}"
                    )
        if len(seen) != len(used):
            raise AssertionError(
                f"{self.name} pool: {len(used)} blocks in use but {len(seen)} in tables (leak)"
            )
