"""The labelled timelines: enough of them, valid, reproducible from their scripts, and on target."""

import json
import sys
from pathlib import Path

from callscript import DATA, build_timelines

from rules.catalog import RULE_IDS
from rules.timeline import parse_timeline

ROOT = DATA.parent.parent.parent


def test_at_least_sixty_whole_calls() -> None:
    files = sorted(DATA.glob("*.json"))
    assert len(files) >= 60
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        timeline = parse_timeline(data, path.name)
        assert "expected" in data and (DATA / data["rules_file"]).exists()
        assert all(e["rule_id"] in RULE_IDS for e in data["expected"])
        assert len(timeline.utterances) >= 4, f"{path.name} is a fragment, not a call"


def test_every_rule_is_labelled_somewhere() -> None:
    labelled = set()
    for path in DATA.glob("*.json"):
        labelled |= {e["rule_id"] for e in json.loads(path.read_text(encoding="utf-8"))["expected"]}
    assert labelled == set(RULE_IDS)


def test_json_files_match_their_scripts() -> None:
    for src in sorted((DATA / "src").glob("*.calls")):
        for call_id, lines in build_timelines.parse_file(src):
            built = build_timelines.build_call(call_id, lines)
            stored = json.loads((DATA / f"{call_id}.json").read_text(encoding="utf-8"))
            assert built == stored, f"{call_id}.json is stale: run tests/data/timelines/build_timelines.py"


def test_benchmark_meets_targets(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.rules import TARGET_PRECISION, TARGET_RECALL, TARGET_RULE_MIN, evaluate

    per_rule, overall, n = evaluate(DATA, verbose=False)
    assert overall.precision >= TARGET_PRECISION and overall.recall >= TARGET_RECALL
    for rid, t in per_rule.items():
        for v in (t.precision, t.recall):
            assert v is None or v >= TARGET_RULE_MIN, rid
