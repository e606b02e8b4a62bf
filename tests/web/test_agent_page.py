"""The agent screen and the supervisor view in a real headless Chromium, fed by messages published into the hub
by hand (no models): what the page shows, that it shows nothing of other agents' calls, that partials do not
move the layout, dismissals, the end-of-call score, and catching up after a network blip.

The same page against the real pipeline (real audio, Whisper, rules) is in test_agent_e2e.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from feedkit import (
    AGENT_TOKENS,
    SUPERVISOR_TOKENS,
    ScriptedCall,
    Server,
    feed_app,
    sign_in_agent,
    sign_in_supervisor,
)
from support.page_wait import wait_until

WEI = "[data-rule='opening.bare_wei']"
EMPATHY = "[data-rule='complaint.empathy_first']"


def texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def boxes(page: Any) -> dict[str, Any]:
    """Where the fixed parts of the desk are."""
    return page.evaluate(
        """() => Object.fromEntries(['.callhead', '[data-role=transcript]', '[data-role=prompts-panel]', '.mood-panel']
             .map(s => { const r = document.querySelector(s).getBoundingClientRect();
                         return [s, [r.x, r.y, r.width, r.height].map(Math.round)]; }))"""
    )


def test_agent_page_shows_own_call_only(light_server: Server, hub, new_page, output_dir: Path) -> None:
    mine, other = new_page(), new_page()
    sign_in_agent(mine, light_server.url, "a1", AGENT_TOKENS["a1"])
    sign_in_agent(other, light_server.url, "a2", AGENT_TOKENS["a2"])
    assert mine.inner_text("[data-role=callstate]") == "等待来电…"

    call = ScriptedCall(hub, "c-angry", "a1")
    call.opening_with_angry_customer()
    mine.wait_for_selector(EMPATHY)
    assert mine.inner_text("[data-role=callstate]") == "通话中"
    assert mine.inner_text("[data-role=caller]") == "13800138000"
    assert texts(mine, ".utt .who") == ["坐席", "客户"]
    assert texts(mine, ".utt .text") == ["喂。", "你们这是什么服务我都打了三次电话了。"]
    assert mine.locator(".utt.partial").count() == 0
    wei = mine.locator(f".prompt{WEI}")
    assert "请用「您好，XX公司」开场" in wei.inner_text() and wei.get_attribute("data-severity") == "warn"
    empathy = mine.locator(f".prompt{EMPATHY}")
    assert empathy.get_attribute("data-severity") == "breach"
    assert "六步法·感受" in empathy.inner_text() and "我理解您的心情，给您添麻烦了" in empathy.inner_text()
    # The breach is stacked above the warning.
    assert mine.locator(".prompt").first.get_attribute("data-rule") == "complaint.empathy_first"
    assert mine.inner_text("[data-role=mood-label]") == "愤怒"
    assert mine.locator("[data-role=mood-curve] polyline").count() == 1
    mine.screenshot(path=str(output_dir / "agent-live-call.png"))

    # Another agent's screen shows none of it.
    time.sleep(0.3)
    assert other.locator(".utt").count() == 0 and other.locator(".prompt").count() == 0
    assert other.inner_text("[data-role=callstate]") == "等待来电…"
    assert "喂" not in other.inner_text("body") and "服务" not in other.inner_text("body")
    assert mine.js_errors == [] and other.js_errors == []


def test_partials_do_not_move_the_layout(light_server: Server, hub, new_page) -> None:
    page = new_page()
    sign_in_agent(page, light_server.url, "a1", AGENT_TOKENS["a1"])
    call = ScriptedCall(hub, "c-partials", "a1")
    call.started()
    call.partial("agent-0", 0.3, "您")
    page.wait_for_selector(".utt.partial")
    before = boxes(page)
    long = "您好，这里是某某公司客服中心，请问有什么可以帮您？我们今天的活动是所有会员都可以享受九折优惠，" * 3
    for i in range(5, len(long), 7):
        call.partial("agent-0", 0.3, long[:i])
    call.partial("customer-0", 2.0, "我想问一下")
    wait_until(page, "document.querySelectorAll('.utt').length === 2")
    assert boxes(page) == before
    call.final("agent-0", 0.3, 9.0, long)
    page.wait_for_selector(".utt:not(.partial)")
    assert page.locator(".utt").count() == 2  # the final replaced its partial in place
    assert boxes(page) == before
    assert page.js_errors == []


def test_dismissal_is_stored_and_survives_a_reload(light_server: Server, hub, dismissals, new_page) -> None:
    page = new_page()
    sign_in_agent(page, light_server.url, "a1", AGENT_TOKENS["a1"])
    call = ScriptedCall(hub, "c-dismiss", "a1")
    call.opening_with_angry_customer()
    page.wait_for_selector(f".prompt{WEI}")
    page.locator(f".prompt{WEI} button.dismiss").click()
    page.wait_for_selector(f".prompt{WEI}", state="detached")
    deadline = time.monotonic() + 5
    while not dismissals.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dismissals.seen == [("c-dismiss", "opening.bare_wei@0.31", "a1")]
    # A prompt that stops applying goes by itself.
    call.send("prompt_cleared", prompt_id="complaint.empathy_first@1.58")
    page.wait_for_selector(f".prompt{EMPATHY}", state="detached")
    assert page.inner_text("[data-role=prompts-empty]") == "暂无提示"
    # Reloading the tab (same session) shows the call again, without the dismissed prompt.
    page.reload()
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_selector(".utt")
    assert texts(page, ".utt .text") == ["喂。", "你们这是什么服务我都打了三次电话了。"]
    assert page.locator(".prompt").count() == 0
    assert page.js_errors == []


def test_call_end_shows_score_then_waits_for_the_next(light_server: Server, hub, new_page, output_dir: Path) -> None:
    page = new_page()
    sign_in_agent(page, light_server.url, "a1", AGENT_TOKENS["a1"])
    first = ScriptedCall(hub, "c-first", "a1")
    first.opening_with_angry_customer()
    first.end(score=72)
    page.wait_for_selector("[data-role=report]:not([hidden])")
    assert page.inner_text("[data-role=callstate]") == "通话已结束 · 等待下一通来电"
    assert page.inner_text("[data-role=score]") == "72"
    assert texts(page, ".finding") and len(texts(page, ".finding")) == 2
    assert "先表达理解" in page.inner_text("[data-role=findings]")
    page.screenshot(path=str(output_dir / "agent-call-ended.png"))
    frozen = page.inner_text("[data-role=duration]")
    time.sleep(1.2)
    assert page.inner_text("[data-role=duration]") == frozen == "00:20"

    second = ScriptedCall(hub, "c-second", "a1", caller_number="13700137000")
    second.started()
    second.final("agent-0", 0.3, 1.5, "您好，某某公司，请问有什么可以帮您？")
    wait_until(page, "document.querySelector('[data-role=caller]').textContent === '13700137000'")
    page.wait_for_selector(".utt")
    assert texts(page, ".utt .text") == ["您好，某某公司，请问有什么可以帮您？"]
    assert page.is_hidden("[data-role=report]") and page.locator(".prompt").count() == 0
    assert page.inner_text("[data-role=callstate]") == "通话中"
    assert page.js_errors == []


def test_page_shows_reconnecting_and_catches_up(hub, new_page, output_dir: Path) -> None:
    server = Server(feed_app(hub)).start()
    try:
        page = new_page()
        sign_in_agent(page, server.url, "a1", AGENT_TOKENS["a1"])
        call = ScriptedCall(hub, "c-blip", "a1")
        call.started()
        call.final("agent-0", 0.31, 0.9, "喂。")
        page.wait_for_selector(".utt")

        server.stop()  # the network goes away
        page.wait_for_selector("#conn[data-state=reconnecting]", timeout=10000)
        assert "正在重新连接" in page.inner_text("#notice")
        page.screenshot(path=str(output_dir / "agent-reconnecting.png"))
        # What happens meanwhile is kept by the hub for this call...
        call.wei_prompt()
        call.final("customer-0", 1.58, 6.4, "你们这是什么服务我都打了三次电话了。")
        call.empathy_prompt()
        time.sleep(1.0)
        assert page.locator(".prompt").count() == 0

        server.start()  # ...and delivered when the page is back
        page.wait_for_selector("#conn[data-state=live]", timeout=15000)
        page.wait_for_selector(f".prompt{EMPATHY}")
        assert page.locator(f".prompt{WEI}").count() == 1
        assert texts(page, ".utt .text") == ["喂。", "你们这是什么服务我都打了三次电话了。"]  # nothing twice
        assert page.inner_text("#notice") == ""
        assert page.js_errors == []
    finally:
        server.stop()


def test_wrong_token_is_refused_on_the_page(light_server: Server, new_page) -> None:
    page = new_page()
    page.goto(f"{light_server.url}/agent")
    page.fill("#agent-id", "a1")
    page.fill("#agent-token", "not-the-token")
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#conn[data-state=refused]")
    assert "不正确" in page.inner_text("#signin-error")
    assert page.is_visible("#signin") and page.is_hidden("#desk")
    assert page.evaluate("sessionStorage.getItem('callwatch.agent')") is None


def test_a_sign_in_link_signs_the_tab_in_and_leaves_no_key_in_the_address(light_server: Server, hub, new_page) -> None:
    # `callwatch demo` prints such a link: the key in the fragment, which the browser never sends.
    sent: list[str] = []
    agent, board = new_page(), new_page()
    for page in (agent, board):
        page.on("request", lambda request: sent.append(request.url))
    agent.goto(f"{light_server.url}/agent#agent_id=a1&key={AGENT_TOKENS['a1']}")
    agent.wait_for_selector("#conn[data-state=live]")
    board.goto(f"{light_server.url}/supervisor#supervisor=lead&key={SUPERVISOR_TOKENS['lead']}")
    board.wait_for_selector("#conn[data-state=live]")
    assert agent.url == f"{light_server.url}/agent" and board.url == f"{light_server.url}/supervisor"
    assert agent.inner_text("#who") == "坐席 a1" and agent.is_hidden("#signin")
    assert not [url for url in sent if "key" in url or "tok-" in url]

    call = ScriptedCall(hub, "c-link", "a1")
    call.opening_with_angry_customer()
    agent.wait_for_selector(f".prompt{WEI}")
    agent.reload()  # the credentials are the tab's now, as after the form
    agent.wait_for_selector(f".prompt{WEI}")


def test_a_sign_in_link_with_a_wrong_key_asks_to_sign_in(light_server: Server, new_page) -> None:
    page = new_page()
    page.goto(f"{light_server.url}/agent#agent_id=a1&key=not-the-token")
    page.wait_for_selector("#conn[data-state=refused]")
    assert page.is_visible("#signin") and page.url == f"{light_server.url}/agent"


def test_supervisor_sees_all_calls_needing_help_first(light_server: Server, hub, new_page, output_dir: Path) -> None:
    calm = ScriptedCall(hub, "c-calm", "a2", caller_number="13900139000")
    calm.started()
    calm.final("agent-0", 0.3, 1.5, "您好，某某公司，请问有什么可以帮您？")
    calm.emotion("customer-0", 3.0, "neutral", 0.1, 0.05)
    page = new_page()
    sign_in_supervisor(page, light_server.url, "lead", SUPERVISOR_TOKENS["lead"])
    page.wait_for_selector("tr[data-call-id='c-calm']")
    angry = ScriptedCall(hub, "c-angry2", "a1")
    angry.opening_with_angry_customer()
    page.wait_for_selector("tr[data-call-id='c-angry2'] .pill[data-severity=breach]")
    rows = page.locator("#calls tr")
    assert rows.count() == 2
    assert rows.first.get_attribute("data-call-id") == "c-angry2"  # the call that needs help is on top
    first = rows.first.inner_text()
    assert "a1" in first and "愤怒" in first and "先共情" in first
    assert "平静" in rows.nth(1).inner_text()
    rows.first.click()
    page.wait_for_selector("#detail .utt")
    assert "你们这是什么服务" in page.inner_text("#detail [data-role=transcript]")
    assert page.locator("#detail .prompt button.dismiss").count() == 0  # read-only for the supervisor
    page.wait_for_selector(f"#detail .prompt{EMPATHY}")
    page.screenshot(path=str(output_dir / "supervisor.png"))
    angry.final("agent-1", 10.0, 12.0, "您别着急，我理解您的心情。")
    wait_until(page, "document.querySelectorAll('#detail .utt').length === 3")
    assert page.js_errors == []


def test_narrow_window_beside_a_crm(light_server: Server, hub, new_page, output_dir: Path) -> None:
    page = new_page(width=683, height=768)
    sign_in_agent(page, light_server.url, "a1", AGENT_TOKENS["a1"])
    call = ScriptedCall(hub, "c-narrow", "a1")
    call.opening_with_angry_customer()
    page.wait_for_selector(EMPATHY)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 683  # no sideways scrolling
    assert page.locator(f".prompt{EMPATHY}").is_visible()
    page.screenshot(path=str(output_dir / "agent-narrow.png"))
