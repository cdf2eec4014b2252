// StemeDB review dashboard: progressive enhancements only; every page works without it.
(function () {
  "use strict";

  // Confirm destructive submissions: the button (or its form) carries data-confirm.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var submitter = ev.submitter || null;
    var text = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (form.hasAttribute("data-selection") && !form.getAttribute("data-allow-empty")) {
      var picked = document.querySelectorAll('input.select[form="' + form.id + '"]:checked').length;
      if (picked === 0) {
        ev.preventDefault();
        announce(form, "Select at least one item first.");
        return;
      }
      if (text) { text = text.replace("the selected items", picked + " selected item" + (picked === 1 ? "" : "s")); }
    }
    if (text && !window.confirm(text)) { ev.preventDefault(); }
  });

  function announce(form, message) {
    var out = form.querySelector("[data-selected-count]");
    if (out) { out.textContent = message; }
  }

  // Selection count and "select all on this page" for the batch bar.
  var batch = document.querySelector("form[data-selection]");
  if (batch) {
    var boxes = function () { return document.querySelectorAll('input.select[form="' + batch.id + '"]'); };
    var counter = batch.querySelector("[data-selected-count]");
    var toggle = batch.querySelector("[data-select-all]");
    var update = function () {
      var all = boxes(), n = 0;
      for (var i = 0; i < all.length; i++) { if (all[i].checked) { n++; } }
      if (counter) { counter.textContent = n === 0 ? "No items selected" : n + " item" + (n === 1 ? "" : "s") + " selected"; }
      if (toggle) { toggle.textContent = (n > 0 && n === all.length) ? "Clear selection" : "Select all on this page"; }
      if (toggle) { toggle.disabled = all.length === 0; }
    };
    document.addEventListener("change", function (ev) {
      if (ev.target && ev.target.classList && ev.target.classList.contains("select")) { update(); }
    });
    if (toggle) {
      toggle.addEventListener("click", function () {
        var all = boxes(), every = true;
        for (var i = 0; i < all.length; i++) { if (!all[i].checked) { every = false; } }
        for (var j = 0; j < all.length; j++) { all[j].checked = !every; }
        update();
      });
    }
    update();
  }

  // Overview: refresh the live figures in place.
  var live = document.getElementById("live");
  if (live && window.fetch) {
    var every = parseInt(live.getAttribute("data-every") || "30", 10) * 1000;
    var status = document.getElementById("live-status");
    var refresh = function () {
      fetch(live.getAttribute("data-refresh"), { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) { throw new Error("Signed out: reload the page to sign in again."); }
          if (!r.ok) { throw new Error("Could not refresh (HTTP " + r.status + ")."); }
          return r.text();
        })
        .then(function (html) {
          live.innerHTML = html;
          if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString() + "."; }
        })
        .catch(function (e) { if (status) { status.textContent = e.message; } });
    };
    window.setInterval(refresh, every);
  }
})();
