"""Every random stream of a run, derived from its one seed: one function, so no two uses share a stream.

A stream is named by its purpose, the rank that draws it (0 for streams alike on every rank) and,
for the epoch order, the pass over the data. Each name hashes to its own 63-bit seed, so distinct
names give unrelated streams, whatever the seed: seed 1's draws are not seed 0's augmentation, and
pass 0's order is not the draws' stream (`tests/test_seeds.py`). Plain Python, no torch.
"""

import hashlib

PURPOSES = (
    "subset",  # which examples a data-set subset keeps (prepare)
    "init",  # the model's initial weights: alike for every method of a seed
    "order",  # the random-reshuffling order of each pass, alike on every rank
    "draws",  # a method's own draws (importance draws, pruning, ...), each rank its own
    "shared_draws",  # draws every rank must make alike (InfoBatch's pruning under DDP)
    "augment",  # random crops and flips, each rank its own
    "irreducible",  # rho_loss's IL models: their halves, weights, order and augmentation (one per data set)
)


def derive_seed(seed: int, purpose: str, *, rank: int = 0, pass_index: int = 0) -> int:
    """The seed of one stream of the run seeded `seed` (a torch.Generator takes it as it is)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown seed purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    name = f"{seed}/{purpose}/{rank}/{pass_index}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big") >> 1
