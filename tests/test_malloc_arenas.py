"""The process's malloc arena cap (service/malloc_arenas.py), observed in a fresh process through glibc's own
malloc_stats(): threads that allocate get arenas of their own up to the cap, and no further."""

import subprocess
import sys

PROBE = """
import ctypes, ctypes.util, sys, threading
from service.malloc_arenas import limit_malloc_arenas
limit_malloc_arenas(int(sys.argv[1]))
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
held, gate = [], threading.Barrier(6)
def allocate():
    gate.wait()  # all six alive at once, so none inherits a finished thread's arena
    held.append(libc.malloc(4096))
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()
"""


def arenas_used(cap: int) -> int:
    probe = subprocess.run([sys.executable, "-c", PROBE, str(cap)], capture_output=True, text=True, check=True)
    return sum(line.startswith("Arena ") for line in probe.stderr.splitlines())


def test_threads_share_at_most_the_capped_number_of_arenas():
    assert arenas_used(0) > 2  # glibc's default: a thread that allocates gets an arena of its own
    assert arenas_used(2) <= 2
