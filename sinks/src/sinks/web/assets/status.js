// Vantage status page: refresh the content every 15 s without a full reload
// (and right away when the tab becomes visible again). No framework.
(function () {
  "use strict";
  var root = document.documentElement;
  root.setAttribute("data-live", "on");
  function refresh() {
    if (document.hidden) return;
    fetch(location.pathname, { cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        ["content", "updated"].forEach(function (id) {
          var fresh = doc.getElementById(id);
          var old = document.getElementById(id);
          if (fresh && old) old.replaceWith(document.importNode(fresh, true));
        });
        document.title = doc.title;
        root.removeAttribute("data-stale");
      })
      .catch(function () {
        root.setAttribute("data-stale", "on");
      });
  }
  setInterval(refresh, 15000);
  document.addEventListener("visibilitychange", refresh);
})();
