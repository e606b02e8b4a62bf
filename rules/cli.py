"""``callwatch audit-timeline CALL.json [--rules FILE]``: the body of the command.

The lead registers :func:`audit_timeline_main` as a typer command; ``python -m rules.cli``
runs it standalone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from rules.config import RulesConfigError, load_rules_config
from rules.engine import audit_timeline
from rules.findings import CallReport
from rules.timeline import TimelineError, load_timeline

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def report_json(report: CallReport, *, include_prompts: bool = False) -> str:
    data = report.model_dump(mode="json", exclude=None if include_prompts else {"prompts"})
    return json.dumps(data, ensure_ascii=False, indent=2)


def audit_timeline_main(
    timeline_path: Path,
    rules_path: Path | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the audit report of one timeline as JSON; bad input is one clear message and exit 2."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        config = load_rules_config(rules_path)
        timeline = load_timeline(Path(timeline_path))
    except (RulesConfigError, TimelineError) as e:
        print(f"error: {e}", file=err)
        return EXIT_BAD_INPUT
    report = audit_timeline(timeline, config)
    print(report_json(report), file=out)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callwatch audit-timeline", description="Audit one call timeline against the rules.")
    parser.add_argument("timeline", type=Path, help="call timeline JSON (see docs/timeline.md)")
    parser.add_argument("--rules", type=Path, default=None, help="deployment rules YAML, merged over the defaults")
    args = parser.parse_args(argv)
    return audit_timeline_main(args.timeline, args.rules)


if __name__ == "__main__":
    raise SystemExit(main())
