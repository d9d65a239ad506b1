// Keeps the parts of a page marked data-refresh="<url>" fresh: every few
// seconds it fetches the URL (an HTML fragment of the same page) and swaps it
// in. It leaves a part alone while the keyboard focus is in it or something
// has been typed into it, so nobody loses their place or their comment.
(function () {
  "use strict";
  var every = 4000;
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var url = el.getAttribute("data-refresh");
    setInterval(function () {
      if (document.hidden) return;
      if (el.contains(document.activeElement) && document.activeElement !== el) return;
      var typed = Array.prototype.some.call(el.querySelectorAll("input:not([type=hidden]), textarea"), function (i) {
        return i.value !== "";
      });
      if (typed) return;
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) el.innerHTML = html; })
        .catch(function () {});
    }, every);
  });
})();
