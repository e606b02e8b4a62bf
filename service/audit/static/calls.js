// Call list: the filter form becomes a /v1/audit/calls query; column headers sort; pages of 50.
(function () {
  var MOOD = { angry: "愤怒", upset: "不满", neutral: "平静", satisfied: "满意" };
  // Rules are named from the deployment's table that the page embeds (rules/names.py); an unknown id as itself.
  var NAMES = JSON.parse(document.getElementById("callwatch-names").textContent).rules || {};
  var state = { sort: "started_at", order: "desc", offset: 0, limit: 50 };
  var form = document.getElementById("filters");

  function params() {
    var p = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (String(v).trim() !== "") p.set(k, v); });
    p.set("sort", state.sort); p.set("order", state.order); p.set("offset", state.offset); p.set("limit", state.limit);
    return p;
  }
  function refusal(status, detail) {
    var why = { 401: "需要登录：请用带密钥的链接（?token=…）重新打开此页。", 403: "此密钥无权查看通话列表（角色不符，或密钥未知、已过期）。" }[status]
      || "查询失败（HTTP " + status + "）";
    return why + (typeof detail === "string" ? " 服务器说明：" + detail : "");
  }
  function clock(s) { if (s == null) return ""; s = Math.max(0, s); var m = Math.floor(s / 60); return m + ":" + ("0" + Math.round(s % 60)).slice(-2); }
  function td(tr, text) { var c = document.createElement("td"); c.textContent = text == null ? "" : text; tr.appendChild(c); return c; }

  function load() {
    var p = params();
    document.getElementById("export").href = "/v1/audit/calls.csv?" + p.toString();
    fetch("/v1/audit/calls?" + p.toString(), { credentials: "same-origin" }).then(function (r) {
      // A key revoked or expired since the page opened: say so rather than fail on an answer with no rows.
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (e) { throw new Error(refusal(r.status, e.detail)); });
      return r.json();
    }).then(function (page) {
      var body = document.querySelector("#calls tbody"); body.innerHTML = "";
      page.rows.forEach(function (r) {
        var tr = document.createElement("tr"); tr.className = "call"; tr.dataset.callId = r.call_id;
        var a = document.createElement("a"); a.href = "/audit/calls/" + encodeURIComponent(r.call_id); a.textContent = (r.started_at || "").replace("T", " ").slice(0, 19) || r.call_id;
        td(tr, "").appendChild(a);
        td(tr, r.agent_id); td(tr, clock(r.duration)); td(tr, r.score == null ? "" : r.score.toFixed(1)); td(tr, r.finding_count);
        td(tr, r.rules.map(function (id) { return NAMES[id] || id; }).join(" "));
        td(tr, r.worst_label ? (MOOD[r.worst_label] || r.worst_label) + (r.worst_valence != null ? " (" + r.worst_valence.toFixed(2) + ")" : "") : "");
        var last = td(tr, r.file_name || "");
        if (r.snippet) { var s = document.createElement("div"); s.className = "snippet"; s.textContent = r.snippet; last.appendChild(s); }
        if (r.speaker_attribution !== "channels") { var w = document.createElement("div"); w.className = "muted"; w.textContent = "单声道：说话人为推测"; last.appendChild(w); }
        var review = document.createElement("a"); review.className = "review-link"; review.textContent = "复核";
        review.href = "/qa/calls/" + encodeURIComponent(r.call_id) + "/review"; td(tr, "").appendChild(review);
        body.appendChild(tr);
      });
      document.getElementById("summary").className = "muted";
      document.getElementById("summary").textContent = "共 " + page.total + " 通 · 查询用时 " + page.took_ms + " ms";
      document.getElementById("page").textContent = page.total ? (page.offset + 1) + "–" + Math.min(page.total, page.offset + page.limit) : "";
      document.getElementById("prev").disabled = page.offset === 0;
      document.getElementById("next").disabled = page.offset + page.limit >= page.total;
    }).catch(function (err) {
      document.querySelector("#calls tbody").innerHTML = "";
      var summary = document.getElementById("summary"); summary.textContent = err.message; summary.className = "bad";
    });
    document.querySelectorAll("th.sortable").forEach(function (th) {
      th.classList.toggle("sorted-asc", th.dataset.sort === state.sort && state.order === "asc");
      th.classList.toggle("sorted-desc", th.dataset.sort === state.sort && state.order === "desc");
    });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); state.offset = 0; load(); });
  document.querySelectorAll("th.sortable").forEach(function (th) {
    th.addEventListener("click", function () {
      if (state.sort === th.dataset.sort) state.order = state.order === "desc" ? "asc" : "desc";
      else { state.sort = th.dataset.sort; state.order = "desc"; }
      state.offset = 0; load();
    });
  });
  document.getElementById("prev").addEventListener("click", function () { state.offset = Math.max(0, state.offset - state.limit); load(); });
  document.getElementById("next").addEventListener("click", function () { state.offset += state.limit; load(); });
  load();
})();
