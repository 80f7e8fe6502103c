/* Segment admin: while a marketer edits the rules, post the form to the admin's count
   endpoint and show "N members match". Uses the form's own CSRF token; no inline script. */
(function () {
  "use strict";
  var timer = null;
  var sequence = 0;

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function update(form, output) {
    var mine = ++sequence;
    var data = new FormData(form);
    output.textContent = "Counting…";
    fetch(output.dataset.countUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(form), "X-Requested-With": "XMLHttpRequest"}
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (mine !== sequence) { return; }
      if (result.ok && !result.body.errors) {
        output.textContent = result.body.text + " now.";
        output.dataset.count = result.body.count;
      } else {
        var fields = Object.keys(result.body.errors || {});
        output.textContent = "Fix the rules to count: " + fields.join(", ") + ".";
        delete output.dataset.count;
      }
    }).catch(function () {
      if (mine === sequence) { output.textContent = "Could not count the members."; }
    });
  }

  function init() {
    var output = document.getElementById("segment-live-count");
    var form = document.getElementById("segment_form");
    if (!output || !form || !output.dataset.countUrl) { return; }
    var schedule = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { update(form, output); }, 300);
    };
    form.addEventListener("change", schedule);
    form.addEventListener("input", schedule);
    update(form, output);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
