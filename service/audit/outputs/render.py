"""HTML reports (Jinja2): one per call, and the index of a batch written by the command line; the templates' Chinese
labels, which the QA pages use too."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from rules.names import NameTable
from service.audit.outputs.plot import emotion_svg

# Chinese labels for the QA pages and reports: moods, speakers, call events, directions. Rules, severities and
# recovery steps are named by the deployment's names table (rules/names.py), not here.
MOOD_LABELS = {"angry": "愤怒", "upset": "不满", "neutral": "平静", "satisfied": "满意"}
SPEAKER_LABELS = {"agent": "坐席", "customer": "客户", "unknown": "未知"}
EVENT_LABELS = {"ringing": "振铃", "answered": "接听", "hold": "保留", "resume": "恢复", "transfer": "转接",
                "hangup": "挂机"}
DIRECTION_LABELS = {"inbound": "呼入", "outbound": "呼出"}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0.0, float(seconds))
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    # The templates (and static/) sit at service/audit/, beside the rooms: the reports and the pages share them.
    env = Environment(loader=PackageLoader("service.audit", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["clock"] = clock
    env.globals.update(MOOD=MOOD_LABELS, SPEAKER=SPEAKER_LABELS, EVENT=EVENT_LABELS, DIRECTION=DIRECTION_LABELS)
    return env


def report_html(report: dict[str, Any], audio_src: str | None, names: NameTable, *, back_link: str | None = None,
                nav: bool = True, base: str = "", script_src: str | None = None, review_link: str | None = None) -> str:
    """A readable, printable page: score and deductions, findings with evidence and jump links, the emotion
    curve with the findings marked, the transcript by speaker and time, and the player. Rules and severities
    are called what `names` (the deployment's table, or the batch's rules file's) calls them. `review_link`:
    the call's QA review page, on the server's report page (a report file on disk has no server to review on)."""
    return environment().get_template("report.html").render(
        r=report, names=names, svg=emotion_svg(report), audio_src=audio_src, back_link=back_link, nav=nav, base=base,
        script_src=script_src, inline_js=None if script_src else _static("report.js"), review_link=review_link,
    )


@lru_cache(maxsize=8)
def _static(name: str) -> str:
    # A report written to disk must work opened from the file system: its script goes inline.
    return (Path(__file__).parents[1] / "static" / name).read_text(encoding="utf-8")


def batch_index_html(rows: list[dict[str, Any]], title: str) -> str:
    return environment().get_template("batch_index.html").render(rows=rows, title=title, nav=False)
