"""The README's and docs' screenshots come from scripts/screenshots.py: each page it takes (one entry in SHOTS)
has its picture committed in docs/screenshots/, small enough for a README, and every picture there is one of
its pages (a page dropped from the script leaves no stale picture behind). Taking them needs the models and a
browser; run the script after changing a page."""

from __future__ import annotations

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
