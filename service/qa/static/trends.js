// The trends page (/qa/trends): the filters, the answer of /v1/qa/trends drawn as charts (trend_charts.js) and
// written as a table with the same numbers, and a link to /v1/qa/trends.csv with the same filters. An agent's
// key gets its own rows only (the API decides; this page just shows what comes back).

import { ruleName } from "/static/names.js";
import { $, api, el, enc, score, showContent, showRefusal } from "./qa_common.js";
import { drawCharts } from "./trend_charts.js";
import { ruleTotals } from "./trend_figures.js";

const SCORE_SOURCE = { reviewed: "复核分", automatic: "自动评分", mixed: "复核与自动" };
// Agent rows come a page at a time (the API's `limit`, at most 5000; team rows come whole): a tenant's
// twelve weeks are thousands of agent rows. The CSV link has every row.
const PAGE = 500;
let offset = 0;
const FILTERS = [["date_from", "date-from"], ["date_to", "date-to"], ["team", "team-filter"], ["agent_id", "agent-filter"]];

/** The filters as the query string the API and the CSV both take (empty ones left out). */
function query() {
  const parts = FILTERS.map(([name, id]) => [name, $(id).value.trim()]).filter(([, value]) => value);
  return parts.length ? `?${parts.map(([name, value]) => `${name}=${enc(value)}`).join("&")}` : "";
}

function options(listId, values) {
  $(listId).replaceChildren(...[...new Set(values)].filter(Boolean).sort().map((v) => el("option", { value: v })));
}

function tableRow(row) {
  const breaches = row.top_breaches.map((b) => `${ruleName(b.rule_id)}×${b.findings}`).join("；");
  return el("tr", { class: "trend", dataset: { agentId: row.agent_id || "", team: row.team || "", week: row.week } },
    el("td", {}, row.week),
    el("td", { class: "agent" }, row.agent_id || ""),
    el("td", {}, row.team || ""),
    el("td", { class: "num calls" }, String(row.calls)),
    el("td", { class: "num average" }, score(row.average_score)),
    el("td", {}, SCORE_SOURCE[row.score_source] || ""),
    el("td", { class: "num" }, `${row.reviewed_calls} / ${row.automatic_calls}`),
    el("td", {}, breaches),
    el("td", { class: "num" }, String(row.turned_negative)),
    el("td", { class: "num" }, String(row.recovered)),
    el("td", { class: "num" }, String(row.prompts_shown)),
    el("td", { class: "num" }, String(row.prompts_heeded)),
    el("td", { class: "num" }, String(row.prompts_dismissed)));
}

async function showTrends() {
  $("page").dataset.drawn = "0";
  let answer;
  try {
    const paged = `${query() || "?"}${query() ? "&" : ""}offset=${offset}&limit=${PAGE}`;
    answer = await api("GET", `/v1/qa/trends${paged}`);
  } catch (err) {
    showRefusal(err, "坐席或团队");
    return;
  }
  showContent();
  // Without team rows (an agent's key, or agents in no team) the rows can only be per agent.
  const level = answer.teams.length ? $("level").value : "agents";
  $("level").disabled = !answer.teams.length;
  const rows = answer[level];
  $("range").textContent = `${answer.date_from} 至 ${answer.date_to}，共 ${answer.weeks.length} 周`;
  $("csv-link").href = `/v1/qa/trends.csv${query()}`;
  const paging = answer.total_agents > answer.agents.length;
  $("pager").hidden = !paging || level !== "agents";
  $("page-of").textContent = `坐席行 ${answer.offset + 1}–${answer.offset + answer.agents.length}，共 ${answer.total_agents} 行；`;
  $("page-prev").disabled = answer.offset === 0;
  $("page-next").disabled = answer.offset + answer.agents.length >= answer.total_agents;
  options("agent-ids", answer.agents.map((r) => r.agent_id));
  options("team-ids", answer.agents.map((r) => r.team));
  $("trends-body").replaceChildren(...rows.map(tableRow));
  if (!rows.length) $("trends-body").append(el("tr", {}, el("td", { colspan: "13", class: "muted" }, "此范围内没有通话。")));
  $("rules-body").replaceChildren(...ruleTotals(rows).map((r) => el("tr", { class: "rule", dataset: { ruleId: r.ruleId } },
    el("td", {}, ruleName(r.ruleId)), el("td", { class: "num" }, String(r.hit)),
    el("td", { class: "num" }, `${(r.rate * 100).toFixed(1)}%`))));
  drawCharts(rows, answer.weeks);
  $("page").dataset.drawn = "1";
}

/** The filters the page's own address names (/qa/trends?agent_id=…), so a view can be linked to and reloaded. */
function filtersFromAddress() {
  const params = new URLSearchParams(window.location.search);
  for (const [name, id] of FILTERS) if (params.get(name)) $(id).value = params.get(name);
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  window.history.replaceState(null, "", `/qa/trends${query()}`);
  offset = 0;
  showTrends();
});
$("level").addEventListener("change", showTrends);
$("page-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); showTrends(); });
$("page-next").addEventListener("click", () => { offset += PAGE; showTrends(); });
filtersFromAddress();
showTrends();
