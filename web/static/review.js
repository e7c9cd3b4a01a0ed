// Review desk keyboard shortcuts, a progressive enhancement (the page works with Tab, Enter and
// Space alone): j / k move between proposals, a approves the current one, x ticks it for bulk
// approval, r goes to the reason of a rejection, ? opens the help. Keys typed in a text field or a
// list are left alone; a tick box in the help turns the shortcuts off. "Autre raison" makes the note required before the form is sent (the
// server checks it again).
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll(".proposal"));

  cards.forEach(function (card) {
    var reason = card.querySelector("[data-reason]");
    var note = card.querySelector("[data-note]");
    if (!reason || !note) { return; }
    var sync = function () { note.required = reason.value === "other"; };
    reason.addEventListener("change", sync);
    sync();
  });

  function typing(element) {
    if (!element) { return false; }
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable) { return true; }
    if (tag !== "INPUT") { return false; }
    return ["checkbox", "radio", "submit", "button", "reset"].indexOf(element.type) < 0;
  }

  function current() {
    var active = document.activeElement;
    return active && active.closest ? active.closest(".proposal") : null;
  }

  // Single-letter shortcuts can be turned off (WCAG 2.1.4: speech input types letters too); the
  // choice is kept in this browser.
  var toggle = document.getElementById("shortcuts-on");
  var KEY = "relais.review.shortcuts";
  var enabled = true;
  try { enabled = window.localStorage.getItem(KEY) !== "off"; } catch (e) { enabled = true; }
  if (toggle) {
    toggle.checked = enabled;
    toggle.addEventListener("change", function () {
      enabled = toggle.checked;
      try { window.localStorage.setItem(KEY, enabled ? "on" : "off"); } catch (e) { /* private mode */ }
    });
  }

  function move(step) {
    if (!cards.length) { return; }
    var index = cards.indexOf(current());
    var next = index < 0 ? (step > 0 ? 0 : cards.length - 1)
      : Math.min(cards.length - 1, Math.max(0, index + step));
    cards[next].focus();
    cards[next].scrollIntoView({block: "nearest"});
  }

  // After « Valider » or « Écarter » the desk opens at the next card (#proposal-…): it takes the
  // focus, so a, x and r act on it and a screen reader goes on from there. What was done is said
  // again just above it (the page's message is at the top, out of view on a phone), in a live
  // region filled after load, so that screen readers say it too.
  var target = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
  if (target && cards.indexOf(target) >= 0) {
    target.focus({preventScroll: true});
    var done = document.querySelector(".messages .flash.success");
    if (done) {
      var row = document.createElement("li");
      var said = document.createElement("p");
      row.className = "done";
      said.className = "flash success";
      said.setAttribute("role", "status");
      row.appendChild(said);
      target.parentNode.insertBefore(row, target);
      // After the browser's own scroll to the fragment, which would hide the line above the card.
      window.setTimeout(function () {
        said.textContent = done.textContent;
        row.scrollIntoView({block: "start"});
      }, 100);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (!enabled || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) { return; }
    var card = current();
    var help = document.getElementById("shortcuts");
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a":  // the card itself chosen: not a key slipping while on its name's link
        if (!card || document.activeElement !== card) { return; }
        card.querySelector("[data-approve]").click();
        break;
      case "x":
        if (!card) { return; }
        var pick = card.querySelector("[data-pick]");
        pick.checked = !pick.checked;
        break;
      case "r":
        if (!card) { return; }
        card.querySelector("[data-reason]").focus();
        break;
      case "?":
        if (help) { help.open = !help.open; }
        break;
      default: return;
    }
    event.preventDefault();
  });
}());
