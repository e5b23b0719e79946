// Confirmations: <form data-confirm="Question?"> asks before it submits. A static file rather
// than onsubmit attributes, so the Content-Security-Policy needs no inline script.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
})();
