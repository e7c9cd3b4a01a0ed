// Each form is sent once per intent, a progressive enhancement on every page: a double click, or
// a second tap while a slow phone is still sending, would otherwise send it twice, and some work
// cannot be undone by the server's own guards (two API tokens, one of whose secret nobody sees).
// Only forms that write (POST); a form another script stopped (or the browser's own checks) is
// not held; after HOLD_MS the form can be sent again (a download leaves the page where it is, a
// request can fail), and coming back to a page the browser kept in memory frees its forms.
(function () {
  "use strict";
  var HOLD_MS = 5000;

  function release(form) {
    form.removeAttribute("data-sent");
    form.removeAttribute("aria-busy");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;  // its method attribute: a field named "method" hides the property
    if (event.defaultPrevented || !form || (form.getAttribute("method") || "").toLowerCase() !== "post") { return; }
    if (form.hasAttribute("data-sent")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "");
    form.setAttribute("aria-busy", "true");
    window.setTimeout(function () { release(form); }, HOLD_MS);
  });

  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent]"), release);
  });
}());
