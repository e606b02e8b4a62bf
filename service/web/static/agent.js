// The agent screen: sign in once a shift, then the page follows the agent's calls by itself.

import { FeedSocket, SignIn, showConnection } from "./feed.js";
import { CallState, DeskView } from "./callview.js";

const CREDENTIALS = "callwatch.agent"; // sessionStorage: {agent_id, token}; gone when the tab closes
const LAST_CALL = "callwatch.agent.lastCall"; // so a reload shows the call in progress again

const $ = (id) => document.getElementById(id);
const calls = new Map(); // call id → CallState (the live ones, and the last ended one)
let current = null; // the call id on screen
let feed = null;

const view = new DeskView($("desk"), {
  onDismiss: dismiss,
  endedText: "通话已结束 · 等待下一通来电",
  idleText: "等待来电…",
});

function hello() {
  const { agent_id, token } = signIn.credentials || {};
  const call = current && calls.get(current);
  let resume = null;
  if (call) resume = { call_id: call.id, after: call.lastEventId };
  else if (sessionStorage.getItem(LAST_CALL)) resume = { call_id: sessionStorage.getItem(LAST_CALL), after: 0 };
  return { type: "hello", agent_id, token, resume };
}

function showCall(id) {
  current = id;
  if (id) sessionStorage.setItem(LAST_CALL, id);
  view.show(id ? calls.get(id) : null);
  renderTabs();
}

/** A new call takes the screen unless the agent is still in another live one (then it waits in a tab). */
function arrived(call) {
  const onScreen = current && calls.get(current);
  if (!onScreen || onScreen.status !== "live") {
    for (const [id, c] of calls) if (id !== call.id && c.status !== "live") calls.delete(id);
    showCall(call.id);
  } else {
    renderTabs();
  }
}

function onMessage(msg) {
  if (msg.type === "ready" || !msg.call_id) return;
  let call = calls.get(msg.call_id);
  if (msg.type === "call") {
    if (call) {
      call.updateInfo(msg);
      if (call.id === current) view.renderHead(call);
      renderTabs();
    } else {
      call = new CallState(msg);
      calls.set(call.id, call);
      arrived(call);
    }
    return;
  }
  if (!call) {
    call = new CallState({ call_id: msg.call_id, status: "live" });
    calls.set(call.id, call);
    arrived(call);
  }
  if (!call.apply(msg)) return;
  if (call.id === current) view.update(call, msg);
  if (msg.type === "ended" || msg.type === "prompt") renderTabs();
}

function dismiss(call, promptId) {
  call.closed.set(promptId, "dismissed"); // hide at once; the server confirms to every open screen
  if (call.id === current) view.renderPrompts(call);
  feed.send({ type: "dismiss", call_id: call.id, prompt_id: promptId });
}

function renderTabs() {
  const tabs = view.part("tabs");
  const shown = [...calls.values()].filter((c) => c.status === "live" || c.id === current);
  if (shown.length < 2) {
    tabs.replaceChildren();
    return;
  }
  tabs.replaceChildren(
    ...shown.map((c) => {
      const b = document.createElement("button");
      b.type = "button";
      const n = c.openPrompts().length;
      b.textContent = `${c.info.caller_number || c.id}${n ? `（${n}）` : ""}`;
      b.setAttribute("aria-current", String(c.id === current));
      b.addEventListener("click", () => showCall(c.id));
      return b;
    }),
  );
}

function onState(state, detail) {
  showConnection($("conn"), $("notice"), state, detail);
  if (state === "refused") signIn.refused();
}

const signIn = new SignIn({
  storageKey: CREDENTIALS,
  idField: "agent_id",
  idInput: $("agent-id"),
  tokenInput: $("agent-token"),
  panel: $("desk"),
  refusedText: "坐席工号或令牌不正确，请重新登录。",
  whoText: (creds) => `坐席 ${creds.agent_id}`,
  onStart: () => {
    view.show(null);
    feed = new FeedSocket({ hello, onMessage, onState });
    feed.start();
  },
  onStop: () => {
    if (feed) feed.stop();
    feed = null;
    sessionStorage.removeItem(LAST_CALL);
    calls.clear();
    current = null;
  },
});

setInterval(() => {
  const call = current && calls.get(current);
  if (call) view.tick(call);
}, 1000);

// A small handle for tests and for support staff poking at a screen in the browser console.
window.callwatch = {
  calls,
  get current() {
    return current;
  },
  get feed() {
    return feed;
  },
};

signIn.start();
