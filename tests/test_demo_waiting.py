"""`callwatch demo` waits for the agent screen it linked to before it plays its call (service/demo/waiting.py):
until a screen of the agent has signed in, a timeout, or (at a terminal) a line typed. No server here; the
whole demo against a real server and browser is tests/test_demo_command.py."""

from __future__ import annotations

import io
import threading
import time

from service.demo.links import agent_link, report_link
from service.demo.waiting import Keyboard, is_quit, wait_for_screen


class Screens:
    """The hub as the wait sees it: screens per agent, which a test signs in from another thread."""

    def __init__(self) -> None:
        self.signed_in: dict[str, int] = {}

    def screens_of(self, agent_id: str) -> int:
        return self.signed_in.get(agent_id, 0)


class Typed:
    """A keyboard whose lines come after a delay, as a person's would."""

    def __init__(self, line: str, after_s: float):
        self.line_at = (line, time.monotonic() + after_s)

    def line(self, timeout_s: float | None = None) -> str | None:
        text, at = self.line_at
        if time.monotonic() >= at:
            return text
        time.sleep(min(timeout_s if timeout_s is not None else 1.0, max(0.0, at - time.monotonic())))
        return text if time.monotonic() >= at else None


def test_the_wait_ends_when_a_screen_of_that_agent_signs_in() -> None:
    screens = Screens()
    screens.signed_in["someone-else"] = 1
    threading.Timer(0.3, lambda: screens.signed_in.update({"agent-demo": 1})).start()
    started = time.monotonic()
    assert wait_for_screen(screens, "agent-demo", timeout_s=10) == "connected"
    assert 0.3 <= time.monotonic() - started < 2


def test_without_a_screen_the_wait_ends_at_its_timeout() -> None:
    started = time.monotonic()
    assert wait_for_screen(Screens(), "agent-demo", timeout_s=0.4) == "timeout"
    assert 0.4 <= time.monotonic() - started < 2


def test_at_a_terminal_enter_starts_the_call_and_q_ends_the_demo() -> None:
    assert wait_for_screen(Screens(), "agent-demo", 10, keyboard=Typed("", 0.2)) == "enter"  # type: ignore[arg-type]
    assert wait_for_screen(Screens(), "agent-demo", 10, keyboard=Typed("Q", 0.2)) == "quit"  # type: ignore[arg-type]


def test_the_keyboard_reads_lines_and_a_closed_input_as_q() -> None:
    keyboard = Keyboard(io.StringIO("\n  again \n"))
    assert keyboard.line(5) == ""
    assert keyboard.line(5) == "again"
    assert is_quit(keyboard.line(5))
    assert keyboard.line(0.05) is None
    assert is_quit("quit") and not is_quit("") and not is_quit(None)


def test_the_links_keep_the_key_out_of_what_is_sent() -> None:
    link = agent_link("http://127.0.0.1:8000", "agent-demo", "k/y+=")
    assert link == "http://127.0.0.1:8000/agent#agent_id=agent-demo&key=k%2Fy%2B%3D"
    assert "key" not in link.split("#")[0]
    assert report_link("http://127.0.0.1:8000", "a b/c") == "http://127.0.0.1:8000/audit/calls/a%20b%2Fc"
