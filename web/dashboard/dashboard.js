// Keeps a page live: every data-refresh milliseconds it fetches the same URL
// with X-Partial and swaps the page's content. No framework, no build step.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main) { return; }
  var every = parseInt(main.getAttribute("data-refresh"), 10);
  if (!every || every < 500) { return; }
  var busy = false;
  // A form being filled in (class "hold": opened, focused, or its text
  // changed) is not swapped away under the user's hands.
  function holding() {
    if (main.querySelector("details.hold[open]")) { return true; }
    var forms = main.querySelectorAll("form.hold");
    for (var i = 0; i < forms.length; i++) {
      if (forms[i].contains(document.activeElement)) { return true; }
      var fields = forms[i].querySelectorAll("textarea, input");
      for (var k = 0; k < fields.length; k++) {
        if (fields[k].value !== fields[k].defaultValue) { return true; }
      }
    }
    return false;
  }
  function refresh() {
    if (busy || document.hidden || holding()) { return; }
    busy = true;
    fetch(window.location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { main.innerHTML = html; } })
      .catch(function () { /* schedulerd restarting: try again next time */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, every);
})();
