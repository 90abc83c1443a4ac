// Live progress: every element with data-poll="<url>" is replaced by a fresh copy of
// itself from that URL once a second. When the copy has no data-poll the job has ended:
// the page is loaded again, so everything on it (state, links) shows the outcome.
(function () {
  function poll(element) {
    var url = element.getAttribute("data-poll");
    if (!url) return;
    setTimeout(function () {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var fresh = holder.firstElementChild;
          element.replaceWith(fresh);
          if (fresh.hasAttribute("data-poll")) poll(fresh);
          else window.location.reload();
        })
        .catch(function () { poll(element); });
    }, 1000);
  }
  document.querySelectorAll("[data-poll]").forEach(poll);
})();
