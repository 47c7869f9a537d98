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
  document.addEventListener("submit", function (ev) {
    stopped = true;
    var form = ev.target;
    if (form && form.classList && form.classList.contains("token-form")) checking(form);
  });
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

  // The access choice: the checklist of the picked organization's tools,
  // shown (and sent) only for "Chosen tools".
  var form = document.querySelector("form.decision");
  if (form) {
    var select = form.querySelector("select[name=account_id]");
    var lists = form.querySelectorAll("fieldset.tools");
    var showTools = function () {
      var picked = form.querySelector("input[name=access]:checked");
      var choosing = picked && picked.value === "tools";
      for (var i = 0; i < lists.length; i++) {
        var mine = !select || lists[i].getAttribute("data-account") === select.value;
        lists[i].hidden = !(choosing && mine);
        lists[i].disabled = !(choosing && mine);
        // Not read yet: the server reads the list when the page asks for it.
        if (choosing && mine && lists[i].getAttribute("data-pending") === "true") {
          stopped = true;
          window.location.assign("?tools=" + encodeURIComponent(lists[i].getAttribute("data-account")));
        }
      }
    };
    form.addEventListener("change", showTools);
    showTools();
  }

  // Checking a token can take up to a minute when the organization's graph
  // was asleep: after two seconds say so, rather than look stuck.
  function checking(form) {
    var button = form.querySelector("button[type=submit]");
    var note = form.querySelector(".wake");
    if (button) button.textContent = "Checking…";
    setTimeout(function () {
      if (button) button.textContent = "Waking your Spor graph…";
      if (note) note.hidden = false;
    }, 2000);
  }
})();
