"""A prepare job that kills its own worker for one video, as an out-of-memory kill or a decoder crash would
(importable by pool workers, which run in other processes)."""

import os
import signal

from modistill.data import prepare_ntu

VICTIM = "S001C001P002R001A002"


def process_or_die(job):
    if job.name == VICTIM:
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare_ntu._process(job)
