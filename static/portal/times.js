// Keeps the "3 min ago" part of every <time data-when> current (portal/templatetags/when.py
// renders them and words them the same way), every 30 s and after refresh.js swaps a region.
(function () {
  "use strict";
  var NOW_SECONDS = 45;
  function relative(seconds, compact) {
    var past = seconds >= 0, n, unit, short;
    seconds = Math.abs(seconds);
    if (seconds < NOW_SECONDS) { return compact ? "now" : (past ? "just now" : "in a moment"); }
    if (seconds < 3600) { n = Math.max(1, Math.floor(seconds / 60)); unit = "min"; short = "m"; }
    else if (seconds < 86400) { n = Math.floor(seconds / 3600); unit = n === 1 ? "hour" : "hours"; short = "h"; }
    else { n = Math.floor(seconds / 86400); unit = n === 1 ? "day" : "days"; short = "d"; }
    var amount = compact ? n + short : n + " " + unit;
    return past ? amount + " ago" : "in " + amount;
  }
  function update(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[data-when]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      var ago = el.querySelector(".ago");
      if (isNaN(at) || !ago) { return; }
      var text = relative((now - at) / 1000, el.getAttribute("data-when") === "compact");
      if (ago.textContent !== text) { ago.textContent = text; }
    });
  }
  document.addEventListener("portal:refreshed", function (event) { update(event.target); });
  update(document);
  setInterval(function () { update(document); }, 30000);
})();
