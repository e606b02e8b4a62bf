"""A page a person opens in a browser answers a refusal with a page that says what happened, not with the
REST API's JSON: 401 (no key), 403 (a key that does not admit them here) and 404 (nothing they may see by
that id) each get a sentence in Chinese, the server's reason beneath it, and a form to sign in with a key.

The status code stays what the REST API would answer (tests/test_security_endpoints.py holds the pages to
it); only the body is for a person. The QA review pages (service/qa/pages.py) fetch their data and show the
same messages from their script (service/qa/static/qa_common.js), so every page reads alike.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

# What a person is told, by status; the server's own reason (English, names no key) follows in small type.
MESSAGES = {
    401: ("需要登录", "打开此页面需要密钥。请使用带密钥的链接（?token=…），或在下面输入密钥。"),
    403: ("无权访问", "此密钥无权打开此页面（角色不符，或密钥未知、已过期）。可换一个密钥登录。"),
    404: ("未找到", "没有这个记录，或它不在您可查看的范围内（其他租户、团队或坐席的）。"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · callwatch</title>
<style>
  body { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 0; background: #fafafa; color: #212121; }
  main { max-width: 40rem; margin: 3rem auto; background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 1rem 1.4rem; }
  .why { color: #757575; font-size: .85rem; } input { padding: .25rem; } button { padding: .25rem .8rem; }
</style></head>
<body><main class="refusal" id="refusal" data-status="{{ status }}" role="alert">
<h1>{{ title }}</h1><p id="refusal-text">{{ text }}</p>
{% if why %}<p class="why">服务器说明：{{ why }}（HTTP {{ status }}）</p>{% endif %}
{% if status in (401, 403) %}<form method="get" class="signin"><label>密钥 <input name="token" type="password" required
 autocomplete="current-password" maxlength="512"></label> <button type="submit">登录</button></form>{% endif %}
</main></body></html>
""")


class PageRefused(Exception):
    """Raised by a page's route or dependency where the REST API would raise its HTTPException."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    @classmethod
    def of(cls, err: HTTPException) -> PageRefused:
        return cls(err.status_code, str(err.detail), dict(err.headers or {}))


def refusal_page(status: int, detail: str) -> str:
    title, text = MESSAGES.get(status, ("出错了", "此页面暂时无法显示。"))
    return _PAGE.render(status=status, title=title, text=text, why=detail)


async def page_refused(_request: Request, exc: Exception) -> HTMLResponse:
    """The app's handler for PageRefused (registered in service/app.py)."""
    assert isinstance(exc, PageRefused)
    return HTMLResponse(refusal_page(exc.status, exc.detail), status_code=exc.status, headers={**HEADERS, **exc.headers})
