"""The demo from the terminal's side: start the server, print the link, wait for the screen, play the call,
print its report link, and at a terminal play it again on Enter until q or Ctrl-C."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any, TextIO

from clients.ingest_client import TranscriptPrinter, stream_file
from service.demo.links import agent_link, report_link
from service.demo.server import DEMO_AGENT, SAMPLE_CALL, DemoServer
from service.demo.waiting import Keyboard, is_quit, wait_for_screen
from service.log_format import configure_logging
from service.settings import Settings


@dataclass
class PlayedCall:
    ended: dict[str, Any] | None  # the server's `ended` (None: it closed without one)
    report: dict[str, Any] | None  # the post-call `report` on the live transcript

    @property
    def completed(self) -> bool:
        return self.ended is not None and self.ended.get("status") == "completed"


def play_sample(ingest_url: str, out: TextIO, agent_id: str = DEMO_AGENT) -> PlayedCall:
    """Stream the sample call in real time as a call of `agent_id`, printing the transcript as it forms."""
    printer = TranscriptPrinter(out=out)
    reports: list[dict[str, Any]] = []

    def on_result(result: dict[str, Any]) -> None:
        printer(result)
        if result.get("type") == "report":
            reports.append(result)

    ended = asyncio.run(stream_file(SAMPLE_CALL, url=ingest_url, realtime=True, agent_id=agent_id, on_result=on_result))
    return PlayedCall(ended, reports[-1] if reports else None)


class Terminal:
    def __init__(self, out: TextIO):
        self.out = out

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()


def run_demo(settings: Settings, host: str, port: int, *, out: TextIO, keyboard: Keyboard | None = None,
             exit_after: bool = False, screen_wait_s: float = 60.0) -> int:
    """The whole demo; returns the exit status. `keyboard` None: no terminal (tests, CI), so the call is played
    once and the server serves on until Ctrl-C, or stops at once with `exit_after`."""
    term = Terminal(out)
    configure_logging(settings.log_format, "warning")  # the terminal is the transcript's; only trouble beside it
    # A key for this run only, so the screen opens without configuring one; nobody else's key is touched.
    key = secrets.token_urlsafe(16)
    settings.agent_tokens = {**settings.agent_tokens, DEMO_AGENT: key}
    server = DemoServer(settings, host, port)
    term.say(f"starting callwatch on {server.base_url} (loading the models takes a few seconds) …")
    if not server.start():
        term.say(f"the service did not start (is port {port} taken? try --port)")
        return 2
    played: PlayedCall | None = None
    try:
        term.say(f"\nOpen the agent screen (signed in as {DEMO_AGENT}):\n\n    {agent_link(server.base_url, DEMO_AGENT, key)}\n")
        later = ", or now with Enter" if keyboard is not None else ""
        term.say(f"The sample call ({SAMPLE_CALL.name}, 26 s) starts when that screen has connected, "
                 f"or in {screen_wait_s:.0f} s{later}.")
        outcome = wait_for_screen(server.hub, DEMO_AGENT, screen_wait_s, keyboard)
        if outcome == "quit":
            return 0
        term.say({"connected": "The agent screen is connected.",
                  "timeout": f"No agent screen after {screen_wait_s:.0f} s: playing the call all the same.",
                  "enter": "Playing the call now."}[outcome])
        while True:
            term.say("Streaming it as a live call (agent left, customer right), in real time:\n")
            played = play_sample(server.ingest_url, out)
            report_note(term, server, played)
            if keyboard is None or exit_after:
                break
            term.say("Enter plays the call again; q (or Ctrl-C) stops callwatch.")
            if is_quit(keyboard.line()):
                return 0
        if exit_after:
            return 0 if played.completed else 1
        term.say(f"callwatch is still serving on {server.base_url} (ingest: {server.ingest_url}). Ctrl-C stops it.")
        server.serve_until_stopped()
        return 0
    except KeyboardInterrupt:
        term.say()  # past the ^C the terminal echoed
        return 0
    finally:
        term.say("stopping callwatch …")
        server.stop()


def report_note(term: Terminal, server: DemoServer, played: PlayedCall) -> None:
    """The call's score and where its report is (the QA report page of the stored call)."""
    if played.ended is None:
        term.say("\nthe server closed the call without ending it; no report")
        return
    score = f"score {played.report['score']:g}, {len(played.report['findings'])} findings; " if played.report else ""
    key_note = " (sign in there with a supervisor or QA key)" if server.qa_pages_need_a_key() else ""
    term.say(f"\n{score}the call's report: {report_link(server.base_url, played.ended['call_id'])}{key_note}\n")
