// Polls the progress endpoint: every second while the job runs, every 3 s while retried
// deliveries still lack an outcome; stops once settled, or after 10 minutes.
(function () {
  var box = document.getElementById("bulk-progress");
  var url = box.getAttribute("data-progress-url");
  var deadline = Date.now() + 10 * 60 * 1000;
  var labels = {queued: "Queued", running: "Running", finished: "Finished"};
  function set(name, text) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = text; }
  }
  function show(p) {
    ["done", "total", "retried", "skipped", "delivered", "failed_again", "in_flight"].forEach(function (name) { set(name, p[name]); });
    set("state-label", labels[p.state] || p.state);
    box.querySelector('[data-field="state-label"]').className = "status " + (p.finished ? "delivered" : "pending");
    var bar = box.querySelector(".progress");
    bar.setAttribute("aria-valuenow", p.done);
    bar.querySelector("rect").setAttribute("width", p.total ? Math.round(100 * p.done / p.total) : 100);
    set("note", p.settled ? "Every retried delivery has an outcome."
      : p.finished ? "Every delivery was handed to the workers; outcomes appear as they are delivered."
      : "This page follows the job as it runs; you may leave it, the job goes on.");
  }
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (p) {
        show(p);
        if (!p.settled && Date.now() < deadline) { setTimeout(poll, p.finished ? 3000 : 1000); }
      })
      .catch(function () { if (Date.now() < deadline) { setTimeout(poll, 5000); } });
  }
  poll();
})();
