// The reviewer's list of reviews (/qa/reviews): the ones this key sees, newest first, each a link to its
// review page, so a review left open yesterday is found again. New reviews start from the call list.

import { REVIEW_STATE, $, api, el, enc, score, showContent, showRefusal, when } from "./qa_common.js";

async function showReviews() {
  const state = $("state-filter").value;
  let answer;
  try {
    answer = await api("GET", `/v1/qa/reviews${state ? `?state=${enc(state)}` : ""}`);
  } catch (err) {
    showRefusal(err, "复核");
    return;
  }
  showContent();
  const rows = answer.reviews.map((r) => el("tr", { class: "review", dataset: { reviewId: r.review_id, state: r.state } },
    el("td", {}, el("a", { href: `/qa/calls/${enc(r.call_id)}/review` }, r.call_id)),
    el("td", {}, r.agent_id),
    el("td", {}, REVIEW_STATE[r.state] || r.state),
    el("td", {}, `${r.opened_by} · ${when(r.opened_at)}`),
    el("td", {}, r.submitted_at ? `${r.submitted_by} · ${when(r.submitted_at)}` : ""),
    el("td", { class: "num" }, score(r.automatic_score)),
    el("td", { class: "num" }, score(r.reviewed_score)),
    el("td", {}, r.acknowledged_at ? when(r.acknowledged_at) : ""),
    el("td", {}, r.open_disputes ? String(r.open_disputes) : "")));
  $("reviews-body").replaceChildren(...rows);
  if (!rows.length) $("reviews-body").append(el("tr", {}, el("td", { colspan: "9", class: "muted" }, "没有复核。")));
}

$("state-filter").addEventListener("change", showReviews);
showReviews();
