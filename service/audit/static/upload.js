// Upload page: send the recordings as one multipart batch, then poll the batch until every job is finished.
(function () {
  var STATE = { queued: "排队中", running: "审核中", done: "完成", skipped: "已审核", failed: "失败" };
  var form = document.getElementById("upload-form");
  var input = document.getElementById("files");
  var drop = document.getElementById("drop");
  var chosen = document.getElementById("chosen");
  var dropped = null;

  function show(files) { chosen.textContent = files.length ? files.length + " 个文件：" + Array.prototype.map.call(files, function (f) { return f.name; }).join("、") : ""; }
  input.addEventListener("change", function () { dropped = null; show(input.files); });
  ["dragenter", "dragover"].forEach(function (n) { drop.addEventListener(n, function (e) { e.preventDefault(); drop.classList.add("over"); }); });
  ["dragleave", "drop"].forEach(function (n) { drop.addEventListener(n, function (e) { e.preventDefault(); drop.classList.remove("over"); }); });
  drop.addEventListener("drop", function (e) { dropped = e.dataTransfer.files; show(dropped); });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var files = dropped || input.files;
    if (!files || !files.length) { document.getElementById("upload-status").textContent = "请先选择录音文件"; return; }
    var data = new FormData();
    Array.prototype.forEach.call(files, function (f) { data.append("files", f, f.name); });
    data.append("agent_channel", document.getElementById("agent_channel").value);
    var meta = document.getElementById("metadata_csv").files[0]; if (meta) data.append("metadata_csv", meta);
    var rules = document.getElementById("rules").files[0]; if (rules) data.append("rules", rules);
    var status = document.getElementById("upload-status");
    status.textContent = "上传中…";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/audit/batches");
    xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) status.textContent = "上传中 " + Math.round(100 * ev.loaded / ev.total) + "%"; };
    xhr.onload = function () {
      if (xhr.status !== 202) { status.textContent = "上传失败：" + xhr.responseText; return; }
      status.textContent = "已上传，开始质检";
      var batch = JSON.parse(xhr.responseText);
      render(batch); poll(batch.batch_id);
    };
    xhr.onerror = function () { status.textContent = "上传失败（网络错误）"; };
    xhr.send(data);
  });

  function poll(id) {
    fetch("/v1/audit/batches/" + id, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (b) {
      render(b);
      if (!b.finished) setTimeout(function () { poll(id); }, 700);
    }).catch(function () { setTimeout(function () { poll(id); }, 2000); });
  }

  function cell(tr, content) { var td = document.createElement("td"); if (content instanceof Node) td.appendChild(content); else td.textContent = content; tr.appendChild(td); return td; }

  function render(b) {
    var box = document.getElementById("batch"); box.hidden = false;
    box.dataset.batchId = b.batch_id; box.dataset.finished = b.finished ? "1" : "0";
    document.getElementById("batch-progress").value = b.progress;
    document.getElementById("batch-counts").textContent = "共 " + b.total + " · 完成 " + (b.counts.done + b.counts.skipped) + " · 失败 " + b.counts.failed + (b.finished ? " · 全部结束" : "");
    document.getElementById("batch-csv").href = "/v1/audit/batches/" + b.batch_id + "/summary.csv";
    var body = document.querySelector("#jobs tbody"); body.innerHTML = "";
    b.jobs.forEach(function (j) {
      var tr = document.createElement("tr"); tr.className = "job"; tr.dataset.state = j.state; tr.dataset.jobId = j.job_id;
      cell(tr, j.file_name);
      var st = cell(tr, STATE[j.state] || j.state); st.className = "job-state" + (j.state === "failed" ? " bad" : "");
      var p = document.createElement("progress"); p.max = 1; p.value = (j.state === "done" || j.state === "skipped" || j.state === "failed") ? 1 : j.progress; cell(tr, p);
      if (j.call_id && (j.state === "done" || j.state === "skipped")) {
        var a = document.createElement("a"); a.href = "/audit/calls/" + encodeURIComponent(j.call_id); a.textContent = "查看报告"; a.className = "report-link"; cell(tr, a);
      } else { var td = cell(tr, j.error || ""); td.className = "bad"; }
      body.appendChild(tr);
    });
  }
})();
