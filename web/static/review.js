// Review desk keyboard shortcuts, a progressive enhancement (the page works with Tab, Enter and
// Space alone): j / k move between proposals, a approves the current one, x ticks it for bulk
// approval, r goes to the reason of a rejection, ? opens the help. Keys typed in a text field or a
// list are left alone. "Autre raison" makes the note required before the form is sent (the
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

  function move(step) {
    if (!cards.length) { return; }
    var index = cards.indexOf(current());
    var next = index < 0 ? (step > 0 ? 0 : cards.length - 1)
      : Math.min(cards.length - 1, Math.max(0, index + step));
    cards[next].focus();
    cards[next].scrollIntoView({block: "nearest"});
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) { return; }
    var card = current();
    var help = document.getElementById("shortcuts");
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a":
        if (!card) { return; }
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
