"""In a real headless Chromium: upload a recording on the page, watch the progress reach done, open the
report, find a finding and the plot, and jump the player to the finding."""

from __future__ import annotations

import shutil

from support import chromium

CALLS = ("call_01_read_vs_spontaneous", "call_02_podcast_pair_with_backchannel", "call_03_dialogue_and_commands")

browser = chromium.browser  # the shared fixture (Debian's Chromium), found by pytest by this name


def test_upload_progress_report_finding_plot(browser, audit_server, shared_audio, tmp_path):
    recording = tmp_path / "browser_call_02.wav"
    shutil.copy(shared_audio / "calls" / f"{CALLS[1]}.wav", recording)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{audit_server.url}/audit")
    page.set_input_files("#files", str(recording))
    page.click("#start")
    page.wait_for_selector("#batch:not([hidden])", timeout=30_000)
    page.wait_for_selector('#batch[data-finished="1"]', timeout=180_000)
    row = page.locator("tr.job").first
    assert row.get_attribute("data-state") == "done"
    assert page.locator("#batch-progress").evaluate("p => p.value") == 1

    row.locator("a.report-link").click()
    page.wait_for_selector("#findings tr.finding")
    assert page.locator("#emotion-plot svg").count() == 1
    first = page.locator("#findings tr.finding").first
    t = float(first.get_attribute("data-t"))
    assert page.locator("#findings").inner_text().count("开场") >= 1  # opening.greeting, labelled in Chinese
    page.wait_for_function("document.getElementById('audio').readyState >= 1", timeout=30_000)
    page.locator("#findings tr.finding button.play").last.click()
    last_t = float(page.locator("#findings tr.finding").last.get_attribute("data-t"))
    page.wait_for_function(f"Math.abs(document.getElementById('audio').currentTime - {max(0.0, last_t - 0.5)}) < 1.0",
                           timeout=10_000)
    assert t <= last_t
    assert not errors, errors
    page.close()
