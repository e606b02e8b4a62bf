// The agent-feed websocket as the pages use it: sign in with a hello, reconnect with backoff after a blip,
// and resume from the last event id seen, so a network hiccup loses no prompt (docs/agent-feed.md).

const POLICY_CLOSE = 1008; // wrong or missing token: do not retry, ask the person to sign in again
const MAX_BACKOFF_MS = 5000;

export class FeedSocket {
  /**
   * @param {object} opts
   * @param {() => object} opts.hello builds the hello message (called on every (re)connect, so it can resume)
   * @param {(msg: object) => void} opts.onMessage
   * @param {(state: string, detail: object) => void} opts.onState connecting | live | reconnecting | refused | off
   */
  constructor({ hello, onMessage, onState }) {
    this.hello = hello;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.pending = []; // commands typed while offline (dismissals), sent after the next `ready`
    this.timer = null;
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/agent-feed`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
    this.onState("off", {});
  }

  connect() {
    clearTimeout(this.timer);
    this.onState(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.retry();
      return;
    }
    this.ws = ws;
    let ready = false;
    ws.onopen = () => ws.send(JSON.stringify(this.hello()));
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      if (msg.type === "ready") {
        ready = true;
        this.attempt = 0;
        this.onState("live", {});
        const queued = this.pending.splice(0);
        for (const cmd of queued) this.send(cmd);
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return; // an old socket closing after we moved on
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === POLICY_CLOSE) {
        this.onState("refused", { reason: ev.reason });
        return;
      }
      if (ready) this.attempt = 0;
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows and decides
  }

  retry() {
    this.attempt += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 400 * 2 ** Math.min(this.attempt - 1, 4)) * (0.8 + Math.random() * 0.4);
    this.onState("reconnecting", { attempt: this.attempt, delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Send a command now, or after the next successful (re)connect. */
  send(cmd) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(cmd));
    } else {
      this.pending.push(cmd);
    }
  }
}

/** The connection badge and notice in the top bar. */
export function showConnection(badge, notice, state, detail) {
  badge.dataset.state = state;
  const texts = {
    off: "未登录",
    connecting: "连接中…",
    live: "已连接",
    reconnecting: "正在重连…",
    refused: "登录失败",
  };
  badge.textContent = texts[state] || state;
  notice.textContent =
    state === "reconnecting"
      ? `连接中断，正在重新连接（第 ${detail.attempt} 次），恢复后自动补齐错过的内容`
      : "";
}

/**
 * The sign-in flow both pages share. Credentials live in sessionStorage for the tab only; the form shows until
 * they are given, then the page's main panel; a refused token sends the person back to the form.
 * The page's elements: #signin (the form), #signin-error, #signout, #who, plus its own id, token and panel.
 */
export class SignIn {
  constructor({ storageKey, idField, idInput, tokenInput, panel, refusedText, whoText, onStart, onStop }) {
    Object.assign(this, { storageKey, idField, idInput, tokenInput, panel, refusedText, whoText, onStart, onStop });
    const $ = (id) => document.getElementById(id);
    this.form = $("signin");
    this.error = $("signin-error");
    this.signout = $("signout");
    this.who = $("who");
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = idInput.value.trim();
      const token = tokenInput.value;
      if (!id || !token) return;
      sessionStorage.setItem(storageKey, JSON.stringify({ [idField]: id, token }));
      tokenInput.value = "";
      this.start();
    });
    this.signout.addEventListener("click", () => {
      onStop();
      sessionStorage.removeItem(storageKey);
      this.showForm("");
    });
  }

  get credentials() {
    try {
      return JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
    } catch (err) {
      return null;
    }
  }

  /**
   * A sign-in link: `#agent_id=a-1042&key=…` (`#supervisor=wang.li&key=…` on the board) stores the credentials
   * for the tab, as the form does. A fragment never leaves the browser (it is neither sent to the server nor
   * written to its log), and it is taken off the address bar at once, so the key is not bookmarked, shared
   * or kept in the history.
   */
  takeLinkCredentials() {
    if (!location.hash) return;
    const params = new URLSearchParams(location.hash.slice(1));
    const id = (params.get(this.idField) || "").trim();
    const token = params.get("key") || "";
    if (!id || !token) return;
    sessionStorage.setItem(this.storageKey, JSON.stringify({ [this.idField]: id, token }));
    history.replaceState(null, "", location.pathname + location.search);
  }

  start() {
    this.takeLinkCredentials();
    const creds = this.credentials;
    if (!creds) {
      this.showForm("");
      return;
    }
    this.form.hidden = true;
    this.panel.hidden = false;
    this.signout.hidden = false;
    this.who.textContent = this.whoText(creds);
    this.onStart(creds);
  }

  refused() {
    sessionStorage.removeItem(this.storageKey);
    this.showForm(this.refusedText);
  }

  showForm(error) {
    this.panel.hidden = true;
    this.signout.hidden = true;
    this.who.textContent = "";
    this.form.hidden = false;
    this.error.textContent = error || "";
    this.idInput.focus();
  }
}
