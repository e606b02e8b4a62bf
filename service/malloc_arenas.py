"""Fewer glibc malloc arenas for the whole process.

glibc gives threads that allocate at once arenas of their own, up to eight per core, and memory freed in one
arena is kept there for that arena's next allocations. In callwatch the recogniser's workers, the emotion
model, the event loop and the executor threads all allocate, so resident memory grows well past what is in
use. Two arenas measured 115 MB less peak RSS (1,382 → 1,267 MB) over the 29 shared clips heard live and by
the second pass in one process, the same effect as `MALLOC_ARENA_MAX=2` in the environment.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap the arenas of threads created from now on; True if the C library took it (glibc does; musl has
    no arenas to cap, and `arenas` 0 leaves the default)."""
    if arenas <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, arenas))
