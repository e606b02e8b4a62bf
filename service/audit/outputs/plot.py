"""The customer's emotion curve as a real plot (matplotlib, SVG), with the findings marked on it.

SVG keeps the report one printable file and the text selectable; every finding marker is a link to
`#t=SECONDS`, which the report's player turns into a jump to that moment. Built with the object API (no
pyplot), so reports can be drawn from several threads. matplotlib (about 40 MiB resident) is imported on the
first plot, not with the server: a server that takes live calls and never draws a report does without it.
"""

from __future__ import annotations

import io
import re
import warnings
from functools import cache
from typing import Any

SEVERITY_COLOUR = {"breach": "#c62828", "warn": "#ef6c00", "info": "#607d8b"}
NEGATIVE_LINE = -0.4  # rules default negative_turn.valence_below: where the curve counts as upset
_CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei", "Microsoft YaHei")


def _font_family() -> list[str]:
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in _CJK_FONTS if f in have] + ["DejaVu Sans"]


def emotion_svg(report: dict[str, Any], width_in: float = 9.0, height_in: float = 3.0) -> str:
    """The SVG markup (no XML prologue), ready to inline in HTML."""
    from matplotlib.figure import Figure

    _configure()
    curve = report.get("emotion_curve") or []
    findings = report.get("findings") or []
    duration = float(report.get("duration_s") or 0.0) or max([p["t"] for p in curve] + [f["t"] for f in findings] + [1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing-glyph warnings when no CJK font is installed
        fig = Figure(figsize=(width_in, height_in), dpi=100)
        fig.set_layout_engine("constrained")
        ax = fig.add_subplot()
        family = _font_family()
        ax.set_xlim(0, duration)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="#9e9e9e", lw=0.8)
        ax.axhspan(-1.05, NEGATIVE_LINE, color="#ffebee", zorder=0)
        if curve:
            t = [p["t"] for p in curve]
            ax.scatter(t, [p["valence"] for p in curve], s=14, color="#90a4ae", label="单句情绪", zorder=3)
            ax.plot(t, [p["smoothed_valence"] for p in curve], color="#1565c0", lw=2, label="情绪曲线（平滑）", zorder=4)
            for p in curve:
                if p.get("turn") == "negative":
                    ax.annotate("转负", (p["t"], p["smoothed_valence"]), textcoords="offset points", xytext=(0, -14),
                                ha="center", fontsize=8, color="#c62828", family=family)
        else:
            ax.text(0.5, 0.5, "无情绪数据", transform=ax.transAxes, ha="center", va="center", color="#757575",
                    fontsize=11, family=family)
        for n, f in enumerate(findings):
            colour = SEVERITY_COLOUR.get(f.get("severity", ""), "#607d8b")
            line = ax.axvline(f["t"], color=colour, lw=1.2, ls="--", alpha=0.8, zorder=2)
            marker = ax.scatter([f["t"]], [0.95], marker="v", s=60, color=colour, zorder=5)
            line.set_url(f"#t={f['t']:.2f}")
            marker.set_url(f"#t={f['t']:.2f}")
            marker.set_gid(f"finding-marker-{n}")
        ax.set_xlabel("通话时间（秒）", family=family)
        ax.set_ylabel("客户情绪（效价）", family=family)
        if curve:
            ax.legend(loc="lower left", fontsize=8, prop={"family": family, "size": 8})
        ax.grid(alpha=0.25)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    # Text stays text (svg.fonttype none) so the browser's CJK fonts draw it; drop the XML prologue for inlining.
    return re.sub(r"^<\?xml[^>]*>\s*<!DOCTYPE[^>]*>\s*", "", svg, flags=re.S)


@cache
def _configure() -> None:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.family"] = _font_family()
