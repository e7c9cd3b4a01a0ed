// Guided free-text entry (resident profile forms): "Ajouter au texte" adds a prompt's answer to
// the profile's text and empties the prompt. Without JavaScript the server does the same when the
// form is saved (ResidentForm.fold_guided), so nothing depends on this file.
(function () {
  "use strict";
  var box = document.querySelector("[data-guided-target]");
  if (!box) { return; }
  var target = document.getElementById(box.getAttribute("data-guided-target"));
  var status = document.getElementById("guided-status");
  if (!target) { return; }
  box.querySelectorAll("[data-guided-add]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-guided-add"));
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var words = source.value.trim();
      if (!words) {
        if (status) { status.textContent = status.getAttribute("data-empty"); }
        source.focus();
        return;
      }
      var text = target.value.replace(/\s+$/, "");
      target.value = text ? text + "\n" + words : words;
      source.value = "";
      if (status) { status.textContent = status.getAttribute("data-added"); }
    });
  });
}());
