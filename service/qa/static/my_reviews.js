// The agent's pages (docs/qa.md): their reviewed calls (/qa/my-reviews) and one of them
// (/qa/my-reviews/{review_id}): the findings as the reviewer decided them, the transcript, acknowledging the
// review, disputing a finding that counts against them with a comment, and the supervisor's ruling.
//
// Agents do not get the recording (the audio route is the QA tools'); a finding's time marks the transcript.

import {
  $, api, clock, el, enc, isRefusal, score, showContent, showRefusal, showStepError, when,
} from "./qa_common.js";
import { renderFindings } from "./findings.js";
import { Transcript } from "./transcript.js";

const reviewId = $("page").dataset.reviewId;

// ---------------------------------------------------------------- the list

async function showList() {
  let answer;
  try {
    answer = await api("GET", "/v1/qa/my-reviews");
  } catch (err) {
    showRefusal(err, "复核");
    return;
  }
  showContent();
  $("list").hidden = false;
  const rows = answer.reviews.map((r) => el("tr", { class: "review", dataset: { reviewId: r.review_id } },
    el("td", {}, el("a", { href: `/qa/my-reviews/${enc(r.review_id)}` }, r.call_id)),
    el("td", { class: "num" }, when(r.submitted_at)),
    el("td", { class: "num" }, score(r.automatic_score)),
    el("td", { class: "num" }, score(r.reviewed_score)),
    el("td", {}, r.acknowledged_at ? "已确认" : el("strong", {}, "待确认")),
    el("td", {}, r.open_disputes ? `${r.open_disputes} 条待裁定` : "")));
  $("reviews-body").replaceChildren(...rows);
  if (!rows.length) $("reviews-body").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "还没有复核过的通话。")));
}

// ---------------------------------------------------------------- one review

let review = null;
const transcript = new Transcript($("transcript"));
const reviewPath = () => `/v1/qa/my-reviews/${enc(reviewId)}`;

function render() {
  $("call-title").textContent = review.call_id;
  $("automatic-score").textContent = score(review.automatic_score);
  $("reviewed-score").textContent = score(review.reviewed_score);
  $("submitted").textContent = `${review.submitted_by} 于 ${when(review.submitted_at)} 提交复核`;
  $("acknowledged").textContent = review.acknowledged_at ? `您已于 ${when(review.acknowledged_at)} 确认` : "";
  $("acknowledge").hidden = !!review.acknowledged_at;
  const disputed = new Set(review.disputes.map((d) => d.finding_id));
  renderFindings($("findings-body"), review.findings, {
    disputes: review.disputes,
    onSeek: (t) => transcript.markNear(t),
    // A finding that counts against the agent, not yet disputed: the API takes one dispute per finding.
    actions: (f) => (f.counted && !disputed.has(f.finding_id) ? disputeButton(f) : null),
  });
}

function disputeButton(f) {
  const box = el("div", { class: "dispute-box" });
  const error = el("div", { class: "form-error", hidden: true, role: "alert" });
  const open = el("button", { type: "button", class: "dispute-open" }, "申诉");
  open.addEventListener("click", () => {
    open.hidden = true;
    const comment = el("textarea", { class: "comment-input", rows: "3", maxlength: "2000", required: true,
                                     placeholder: `为什么不同意「${clock(f.t)}」这条发现（必填，主管会看到）` });
    const form = el("form", { class: "dispute-form" }, comment,
      el("button", { type: "submit", class: "dispute-send" }, "提交申诉"), " ",
      el("button", { type: "button", class: "cancel", onclick: () => { form.remove(); open.hidden = false; } }, "取消"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", `${reviewPath()}/disputes`, { finding_id: f.finding_id, comment: comment.value });
        review = await api("GET", reviewPath()); // the dispute's answer is the dispute; the page shows the review
        render();
      } catch (err) {
        showStepError(error, err, "复核");
      }
    });
    box.insertBefore(form, error);
    comment.focus();
  });
  box.append(open, error);
  return box;
}

$("acknowledge").addEventListener("click", async () => {
  try {
    review = await api("POST", `${reviewPath()}/acknowledge`);
    render();
  } catch (err) {
    showStepError($("acknowledge-error"), err, "复核");
  }
});

async function showOne() {
  try {
    review = await api("GET", reviewPath());
  } catch (err) {
    showRefusal(err, "复核");
    return;
  }
  showContent();
  $("one").hidden = false;
  render();
  try {
    transcript.render((await api("GET", `${reviewPath()}/transcript`)).lines);
  } catch (err) {
    if (isRefusal(err)) showRefusal(err, "复核");
    else $("transcript-note").textContent = `无法读取转写：${err.detail || err.message}`;
  }
}

if (reviewId) showOne();
else showList();
