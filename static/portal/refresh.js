// Self-refreshing pages: every `data-refresh` seconds (10 by default) while the tab is visible,
// fetch this same URL and put the fetched page's [data-refresh] regions (matched by id) in place
// of ours. It waits while the user is busy with the page: typing in a form field, holding a text
// selection, or with a <details> open inside a region (swapping would close it). A line above the
// first region says when it last updated, or that it is paused. No inline script: CSP forbids it.
(function () {
  "use strict";
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-refresh][id]"));
  if (!regions.length) { return; }
  var seconds = Math.max(5, parseInt(regions[0].getAttribute("data-refresh"), 10) || 10);
  var status = document.createElement("p");
  status.className = "refresh-status";
  // Not a live region: a screen reader would announce "Updated ..." every few seconds.
  regions[0].parentNode.insertBefore(status, regions[0]);
  var timer = null;
  var inFlight = false;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function say(text, paused) {
    status.textContent = text;
    status.classList.toggle("paused", !!paused);
  }
  // The dashboard's zone is settings.TIME_ZONE, UTC (see portal/templatetags/when.py).
  function updatedNow() {
    var now = new Date();
    say("Updated " + pad(now.getUTCHours()) + ":" + pad(now.getUTCMinutes()) + " UTC", false);
  }
  function busy() {
    var active = document.activeElement;
    if (active && active.closest && active.closest("input, textarea, select, [contenteditable]")) { return true; }
    var selection = window.getSelection && window.getSelection();
    if (selection && !selection.isCollapsed && String(selection).trim() !== "") { return true; }
    return regions.some(function (region) { return region.querySelector("details[open]") !== null; });
  }
  function swap(html) {
    var fetched = new DOMParser().parseFromString(html, "text/html");
    regions.forEach(function (region) {
      var fresh = fetched.getElementById(region.id);
      if (!fresh || !fresh.hasAttribute("data-refresh")) { return; }
      region.replaceChildren.apply(region, Array.prototype.map.call(fresh.childNodes, function (node) {
        return document.importNode(node, true);
      }));
      region.dispatchEvent(new CustomEvent("portal:refreshed", {bubbles: true}));
    });
  }
  function refresh() {
    timer = null;
    if (document.hidden) { return; }  // visibilitychange starts it again
    if (busy()) { say("Auto-refresh paused", true); schedule(); return; }
    if (inFlight) { schedule(); return; }
    inFlight = true;
    fetch(window.location.href, {
      headers: {"X-Portal-Refresh": "1"}, credentials: "same-origin", cache: "no-store", redirect: "error"
    })
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.text(); })
      .then(function (html) {
        // The user may have started typing or selecting while the page was on its way.
        if (busy()) { say("Auto-refresh paused", true); return; }
        swap(html);
        updatedNow();
      })
      .catch(function () { say("Auto-refresh failed; retrying", true); })
      .then(function () { inFlight = false; schedule(); });
  }
  function schedule() {
    if (timer === null && !document.hidden) { timer = setTimeout(refresh, seconds * 1000); }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) { clearTimeout(timer); timer = null; }
      say("Auto-refresh paused while this tab is hidden", true);
    } else {
      if (timer !== null) { clearTimeout(timer); }
      timer = setTimeout(refresh, 500);
    }
  });
  updatedNow();
  schedule();
})();
