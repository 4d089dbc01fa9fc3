// Keeps a page live: every data-refresh milliseconds it fetches the same URL
// with X-Partial and swaps the page's content. No framework, no build step.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main) { return; }
  var every = parseInt(main.getAttribute("data-refresh"), 10);
  if (!every || every < 500) { return; }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(window.location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { main.innerHTML = html; } })
      .catch(function () { /* schedulerd restarting: try again next time */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, every);
})();
