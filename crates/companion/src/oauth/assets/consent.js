// Finishes the page by itself when the decision is made elsewhere (the
// command line or the desktop window): poll our own status endpoint and
// follow the redirect it hands out once.
(function () {
  "use strict";
  var main = document.querySelector("main[data-request]");
  if (!main) return;
  var id = main.getAttribute("data-request");
  var csrf = main.getAttribute("data-csrf");
  var url = "/oauth/consent/" + encodeURIComponent(id) + "/status?csrf=" + encodeURIComponent(csrf);
  var stopped = false;
  document.addEventListener("submit", function () { stopped = true; });
  function poll() {
    if (stopped) return;
    fetch(url, { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status === "decided" && s.redirect) {
          window.location.replace(s.redirect);
        } else if (s.status === "pending") {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
