// What every QA review page shares: asking the API (the key rides in the callwatch_qa cookie), saying in
// plain words why it refused, and building the page from text. Everything a person typed (a reason, a
// note, a comment) and everything a call said goes into the page as text nodes, never as markup.

/** An answer that was not 2xx: `status` (0 when the server could not be reached) and the server's reason. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || "";
  }
}

/** The server's reason, from FastAPI's `detail` (a sentence, or a 422's list of {loc, msg}). */
function reasonOf(data) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((e) => (e && e.msg) || "").filter(Boolean).join("；");
  return "";
}

/** The JSON answer of `method url` (with `body` as JSON); throws ApiError for anything but 2xx. */
export async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "无法连接服务器");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, reasonOf(data));
  return data;
}

export const enc = encodeURIComponent;

// ---------------------------------------------------------------- building the page

/** An element with properties and children; strings become text nodes (never parsed as HTML). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

/** Seconds into the call as the QA report writes them: 01:35.0. */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(+seconds)) return "";
  const s = Math.max(0, +seconds);
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

/** A time the service recorded (UTC, with its zone), in the reader's local time: 2026-12-04 09:32. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A share 0..1 as a percentage: 0.3333 → 33.3%. */
export function percent(value) {
  return value === null || value === undefined ? "—" : `${(100 * Number(value)).toFixed(1)}%`;
}

export function score(value) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(1);
}

// ---------------------------------------------------------------- labels (names of rules come from names.js)

export const SPEAKER = { agent: "坐席", customer: "客户", unknown: "未知" };
export const DECISION = { pending: "待定", confirmed: "已确认", rejected: "已驳回" };
export const SOURCE = { automatic: "自动", added: "人工补充" };
export const DISPUTE_STATE = { open: "待裁定", upheld: "维持", overturned: "撤销" };
export const REVIEW_STATE = { open: "复核中", submitted: "已提交" };
// How far a reviewer is with a picked call or a calibration (the API's ReviewProgress).
export const PROGRESS = { not_started: "未开始", in_progress: "进行中", submitted: "已提交" };
// Why a call was picked (the API's ReasonCode); the API's own `detail` says how, beside it.
export const PICK_REASON = {
  sample: "抽样", severe_finding: "严重发现", low_score: "低分", negative_end: "客户情绪未恢复", calibration: "校准",
};
export const ROLE = { qa: "质检", supervisor: "主管", agent: "坐席", local: "本机" };
export const ACTION = {
  opened: "开始复核", confirmed: "确认", rejected: "驳回", added: "补充发现", submitted: "提交复核",
  acknowledged: "坐席已阅", disputed: "坐席申诉", upheld: "维持原判", overturned: "撤销发现",
};

// ---------------------------------------------------------------- saying why

// The same words as the pages the server answers itself (service/page_refusal.py).
const REFUSALS = {
  401: ["需要登录", "打开此页面需要密钥。请使用带密钥的链接（?token=…），或在下面输入密钥。"],
  403: ["无权访问", "此密钥无权打开此页面（角色不符，或密钥未知、已过期）。可换一个密钥登录。"],
  404: ["未找到", "没有这个{what}，或它不在您可查看的范围内（其他租户、团队或坐席的）。"],
};

/** Whether `err` means the page as a whole cannot be shown to this key (rather than one step failing). */
export function isRefusal(err) {
  return err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404);
}

/**
 * Replace the page's content with a notice saying why it cannot be shown: `what` names the thing the address
 * points at (通话, 复核, 申诉). A 401 or 403 comes with a form to sign in with a key (?token=, then the cookie).
 */
export function showRefusal(err, what) {
  const notice = $("notice");
  const content = $("content");
  if (content) content.hidden = true;
  const status = err instanceof ApiError ? err.status : 0;
  // A 422 on a read is an id of the wrong shape in the address: as good as not found.
  const shown = status === 422 ? 404 : status;
  const [title, text] = REFUSALS[shown] || ["出错了", "此页面暂时无法显示，请稍后再试。"];
  notice.replaceChildren(
    el("h2", {}, title),
    el("p", { id: "notice-text" }, text.replace("{what}", what || "记录")),
    err && err.detail ? el("p", { class: "muted" }, `服务器说明：${err.detail}${status ? `（HTTP ${status}）` : ""}`) : null,
  );
  if (shown === 401 || shown === 403) notice.append(signInForm());
  notice.dataset.status = String(shown);
  notice.hidden = false;
}

function signInForm() {
  // A GET to this very page with ?token=: the server sets the cookie and sends the browser back here.
  return el("form", { method: "get", class: "signin", id: "signin" },
    el("label", {}, "密钥 ", el("input", { name: "token", type: "password", required: true, maxlength: "512",
                                          autocomplete: "current-password" })),
    " ", el("button", { type: "submit" }, "登录"));
}

/** One step failed (a 409 or 422): say so beside it; a refusal takes the whole page. */
export function showStepError(node, err, what) {
  if (isRefusal(err)) {
    showRefusal(err, what);
    return;
  }
  const prefix = err instanceof ApiError && err.status === 409 ? "当前状态下不能这样做：" :
    err instanceof ApiError && err.status === 422 ? "请检查输入：" : "没有成功：";
  node.textContent = prefix + ((err && err.detail) || (err && err.message) || "");
  node.hidden = false;
}

/** Show the page's content (it starts hidden until the first answer says the key may see it). */
export function showContent() {
  $("notice").hidden = true;
  $("content").hidden = false;
}
