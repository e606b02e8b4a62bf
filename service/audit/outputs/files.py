"""Report files on disk for the command line: one per recording, named after it, and the batch summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rules.names import NameTable
from service.audit.outputs.exports import batch_csv, batch_row, call_csv
from service.audit.outputs.render import batch_index_html, report_html

FORMATS = ("json", "csv", "html")


class ReportWriter:
    def __init__(self, out_dir: Path, formats: list[str], names: NameTable):
        self.out_dir = out_dir
        self.formats = formats
        self.name_table = names  # the batch's rules file's: reports name rules as the rules that judged them
        self.rows: list[dict[str, Any]] = []
        self._names: dict[str, str] = {}
        out_dir.mkdir(parents=True, exist_ok=True)

    def _stem(self, source: Path) -> str:
        """The recording's name; a second recording of the same name (other folder) gets its parent's too."""
        key = str(source.resolve())
        if key not in self._names:
            stem = source.stem
            if stem in self._names.values():
                stem = f"{source.parent.name}_{stem}"
            self._names[key] = stem
        return self._names[key]

    def write_call(self, source: Path, state: str, report: dict[str, Any]) -> dict[str, Path]:
        stem = self._stem(source)
        written: dict[str, Path] = {}
        if "json" in self.formats:
            written["json"] = self.out_dir / f"{stem}.json"
            written["json"].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        if "csv" in self.formats:
            written["csv"] = self.out_dir / f"{stem}.csv"
            written["csv"].write_text(call_csv(report, self.name_table), encoding="utf-8")
        if "html" in self.formats:
            written["html"] = self.out_dir / f"{stem}.html"
            audio = quote(Path(os.path.relpath(source.resolve(), self.out_dir.resolve())).as_posix())
            written["html"].write_text(report_html(report, audio, self.name_table, nav=False), encoding="utf-8")
        row = batch_row(source.name, state, report)
        row.update(source=str(source), reports={k: v.name for k, v in written.items()})
        self.rows.append(row)
        return written

    def write_failure(self, source: Path, code: str | None, error: str | None) -> None:
        row = batch_row(source.name, "failed", None, error)
        row.update(source=str(source), error_code=code)
        self.rows.append(row)

    def write_summary(self, extra: dict[str, Any]) -> dict[str, Path]:
        rows = sorted(self.rows, key=lambda r: r["file_name"])
        counts = {s: sum(1 for r in rows if r["state"] == s) for s in ("done", "skipped", "failed")}
        summary = {**extra, "files": len(rows), "counts": counts,
                   "calls": [{k: r.get(k) for k in ("file_name", "source", "state", "call_id", "score", "findings",
                                                    "duration_s", "error_code", "error", "reports")} for r in rows]}
        paths = {"summary.json": self.out_dir / "summary.json", "summary.csv": self.out_dir / "summary.csv"}
        paths["summary.json"].write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        paths["summary.csv"].write_text(batch_csv(rows), encoding="utf-8")
        if "html" in self.formats:
            index_rows = [{"file_name": r["file_name"], "state": r["state"], "score": r.get("score"),
                           "findings": r.get("findings"), "duration": r.get("duration_s"), "error": r.get("error"),
                           "report_file": (r.get("reports") or {}).get("html")} for r in rows]
            paths["index.html"] = self.out_dir / "index.html"
            paths["index.html"].write_text(batch_index_html(index_rows, "批量质检结果"), encoding="utf-8")
        return paths
