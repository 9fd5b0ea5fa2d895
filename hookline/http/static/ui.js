// Live refresh without a build step: an element with an id and data-refresh-ms > 0 is
// fetched again from the same URL every so often and swapped in place. The new copy
// carries its own data-refresh-ms, so a finished execution stops refreshing itself.
(function () {
  function live() {
    var box = document.getElementById("live");
    return !box || box.checked;
  }
  function schedule(id) {
    var element = document.getElementById(id);
    var ms = element ? parseInt(element.getAttribute("data-refresh-ms") || "0", 10) : 0;
    if (ms > 0) setTimeout(function () { refresh(id); }, ms);
  }
  function refresh(id) {
    if (!live()) { schedule(id); return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "refresh" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          var current = document.getElementById(id);
          if (fresh && current) {
            keepOpen(current, fresh);
            current.replaceWith(fresh);
          }
        }
        schedule(id);
      })
      .catch(function () { schedule(id); });
  }
  // A job the operator opened stays open when its page is refreshed in place.
  function keepOpen(current, fresh) {
    current.querySelectorAll("section[id] > details[open]").forEach(function (details) {
      var again = fresh.querySelector("#" + details.parentElement.id + " > details");
      if (again) again.open = true;
    });
  }
  // A node of an execution's tree links to its job ("#node-<key>"): open that job's
  // details (its output, error, log and attempts) and bring it into view.
  function openJob(hash) {
    if (!hash || hash.indexOf("#node-") !== 0) return;
    var section = document.getElementById(decodeURIComponent(hash.slice(1)));
    var details = section ? section.querySelector("details") : null;
    if (!details) return;
    details.open = true;
    section.scrollIntoView({ block: "start" });
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.node-link") : null;
    if (link) openJob(link.getAttribute("href"));
  });
  window.addEventListener("hashchange", function () { openJob(window.location.hash); });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-ms][id]").forEach(function (element) { schedule(element.id); });
    openJob(window.location.hash);
  });
})();
