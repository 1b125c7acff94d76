"""Which process of a distributed launch this is, from the variables torchrun, Lightning's launcher and SLURM set;
read by the command line (who logs) and the run folder (who holds its lock). Imports nothing heavy."""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def worker_rank() -> int:
    """This process's rank in a distributed run (0 outside one): the largest of the rank variables."""
    ranks = [os.environ.get(k, "0") for k in RANK_VARIABLES]
    return max(int(r) if r.isdigit() else 0 for r in ranks)


def is_launch_process() -> bool:
    """True outside a distributed run and in the process of global rank 0: the one that holds a run folder's lock
    for the whole launch and says everything once (the other ranks, started later by Lightning's launcher or
    torchrun, would otherwise find the lock taken and repeat every log line)."""
    return worker_rank() == 0
