"""The README's and docs' screenshots come from scripts/screenshots.py: each page it takes (one entry in SHOTS)
has its picture committed in docs/screenshots/, small enough for a README, and every picture there is one of
its pages (a page dropped from the script leaves no stale picture behind). Taking them needs the models and a
browser; run the script after changing a page."""

from __future__ import annotations

import string
from pathlib import Path

from scripts.screenshots import OUT, SHOTS

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 300 * 1024


def test_every_shot_has_its_picture_and_every_picture_a_shot() -> None:
    names = [shot.name for shot in SHOTS]
    assert len(names) == len(set(names))
    assert sorted(p.stem for p in OUT.glob("*.png")) == sorted(names), "run scripts/screenshots.py"


def test_the_pictures_are_small_enough_for_a_readme() -> None:
    for path in OUT.glob("*.png"):
        assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size // 1024} KB"


def test_the_readme_and_the_agent_feed_doc_show_them() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert all(f"docs/screenshots/{shot.name}.png" in readme for shot in SHOTS)
    assert "screenshots/agent-screen.png" in (REPO / "docs" / "agent-feed.md").read_text(encoding="utf-8")


def test_the_review_page_and_a_calibrations_result_are_among_them() -> None:
    by_path = {shot.path: shot for shot in SHOTS}
    for path in ("/qa/calls/{call_id}/review", "/qa/calibrations/{calibration_id}/result"):
        assert path in by_path, path
        assert by_path[path].prepare is not None, f"{path}: a page with nothing done on it yet shows an empty form"


def test_a_shots_address_names_only_what_the_script_fills_in() -> None:
    # "{call_id}" is the played call's; anything else comes from the shot's `prepare`.
    for shot in SHOTS:
        fields = {name for _, name, _, _ in string.Formatter().parse(shot.path) if name}
        assert fields <= {"call_id"} or shot.prepare is not None, shot.name
