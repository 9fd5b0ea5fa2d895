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
          if (fresh && current) current.replaceWith(fresh);
        }
        schedule(id);
      })
      .catch(function () { schedule(id); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-ms][id]").forEach(function (element) { schedule(element.id); });
  });
})();
