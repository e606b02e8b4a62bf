// The report page: jump the player to a finding or utterance (#t=SECONDS links, ▶ buttons), follow along.
(function () {
  var audio = document.getElementById("audio");
  function jump(t) {
    if (!audio || isNaN(t)) return;
    audio.currentTime = Math.max(0, t - 0.5);
    var p = audio.play(); if (p && p.catch) p.catch(function () {});
  }
  function fromHash() {
    var m = /^#t=([0-9.]+)/.exec(location.hash);
    if (m) jump(parseFloat(m[1]));
  }
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.play");
    if (b) jump(parseFloat(b.dataset.t));
    var a = ev.target.closest("a");
    if (a && /#t=/.test(a.getAttribute("href") || a.getAttribute("xlink:href") || "")) {
      ev.preventDefault();
      var href = a.getAttribute("href") || a.getAttribute("xlink:href");
      history.replaceState(null, "", href);
      jump(parseFloat(href.split("#t=")[1]));
    }
  });
  if (audio) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.utt"));
    audio.addEventListener("timeupdate", function () {
      var t = audio.currentTime;
      rows.forEach(function (r) {
        r.classList.toggle("playing", t >= +r.dataset.start && t <= +r.dataset.end);
      });
    });
    fromHash();
  }
})();
