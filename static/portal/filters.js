// The leads list's filters (templates/portal/lead_list.html): a <details class="filters"> the server
// renders open, so without JavaScript the form is always there. On a phone with no filter in use
// the form would fill the first screen, so it starts closed there and the leads come first; it is
// left open whenever a filter is active (data-active="1"). Crossing the breakpoint (rotating a
// tablet, resizing a window) opens it again on the wide layout. The width matches tables.css.
(function () {
  "use strict";

  var narrow = window.matchMedia("(max-width: 640px)");

  function fit() {
    document.querySelectorAll("details.filters[data-active='0']").forEach(function (details) {
      details.open = !narrow.matches;
    });
  }

  fit();
  narrow.addEventListener("change", fit);
})();
