"""What machine a benchmark ran on, in the terms that change its numbers: the CPU model, its cores, and the
code path CTranslate2 chose on it (instruction set and GEMM backend). int8 Whisper output and speed both
differ between Intel and AMD, AVX2 and AVX-512, so every table carries this line."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from functools import lru_cache

_CHOICE = re.compile(r"(Selected ISA|Use Intel MKL|GEMM_S8 backend): ([^(\n]+)")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def ctranslate2_choice() -> str:
    """The instruction set and int8 GEMM backend CTranslate2 picks here, read from its own log."""
    # CTranslate2 logs its choice when it loads the first model: load the embedded Whisper in a child
    # process with its log on.
    probe = ("from faster_whisper import WhisperModel;"
             "from models.embedded_whisper import ensure_embedded_whisper;"
             "from service.settings import Settings;"
             "WhisperModel(str(ensure_embedded_whisper(Settings().cache_dir)), compute_type='int8', cpu_threads=1)")
    env = {**os.environ, "CT2_VERBOSE": "1"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=root,
                          check=False, timeout=120)
    found = dict((k, v.strip()) for k, v in _CHOICE.findall(done.stderr))
    if not found:
        return "CTranslate2 choice unknown"
    import ctranslate2

    return (f"CTranslate2 {ctranslate2.__version__}: ISA {found.get('Selected ISA', '?')}, "
            f"MKL {found.get('Use Intel MKL', '?')}, int8 GEMM {found.get('GEMM_S8 backend', '?')}")


def describe() -> str:
    """One line: CPU model, cores, and CTranslate2's code path."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()}; {ctranslate2_choice()}"


if __name__ == "__main__":
    print(describe())
