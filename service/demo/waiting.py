"""Waiting for the agent screen, and for the person at the terminal.

The call is played once the screen the demo linked to has said hello on its feed socket (the hub counts its
subscribers), or after a minute: someone who only watches the terminal still gets the call. At a terminal,
Enter starts it at once and q ends the demo.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Literal, Protocol, TextIO

SCREEN_WAIT_S = 60.0
POLL_S = 0.1  # the call starts at most this long after the screen signed in
QUIT = {"q", "quit", "exit"}

Outcome = Literal["connected", "timeout", "enter", "quit"]


class Screens(Protocol):
    def screens_of(self, agent_id: str) -> int: ...


class Keyboard:
    """Lines typed at the terminal, read by a thread of their own so that the wait for the screen can take an
    Enter too. A closed input (Ctrl-D) reads as q."""

    def __init__(self, stream: TextIO):
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), name="callwatch-demo-keyboard", daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self._lines.put(line.strip())
        self._lines.put("q")

    def line(self, timeout_s: float | None = None) -> str | None:
        """The next line typed (stripped), or None if none came within `timeout_s` (None: wait for one)."""
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return None


def is_quit(line: str | None) -> bool:
    return line is not None and line.strip().lower() in QUIT


def wait_for_screen(screens: Screens, agent_id: str, timeout_s: float = SCREEN_WAIT_S,
                    keyboard: Keyboard | None = None, clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Until a screen of `agent_id` is signed in, `timeout_s` has passed, or (with a keyboard) a line is typed."""
    deadline = clock() + timeout_s
    while True:
        if screens.screens_of(agent_id):
            return "connected"
        left = deadline - clock()
        if left <= 0:
            return "timeout"
        if keyboard is None:
            time.sleep(min(POLL_S, left))
            continue
        line = keyboard.line(min(POLL_S, left))
        if line is not None:
            return "quit" if is_quit(line) else "enter"
