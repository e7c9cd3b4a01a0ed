// Follows a background job (import, reindex) on its page: polls the job's JSON every second and
// moves the progress bar; reloads the page once the job ends, to show its result. Without
// JavaScript the page offers an "Actualiser" link instead.
(function () {
  "use strict";
  var box = document.querySelector("[data-job-status]");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-job-status");
  var bar = box.querySelector("progress");
  var refresh = box.querySelector("[data-job-refresh]");
  if (refresh) {
    refresh.hidden = true;
  }

  function show(name, value) {
    var node = box.querySelector('[data-job-field="' + name + '"]');
    if (node) {
      node.textContent = value;
    }
  }

  function poll() {
    fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (job) {
        if (bar) {
          bar.value = job.percent;
          bar.textContent = job.percent + " %";
        }
        show("percent", job.percent + " %");
        show("status_label", job.status_label);
        show("stage_label", job.stage_label);
        if (job.done) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);  // the server restarts or the network drops: try again later
      });
  }

  window.setTimeout(poll, 1000);
}());
