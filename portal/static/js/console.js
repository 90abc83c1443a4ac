// The console's small behaviours, on every page (portal/templates/base.html):
// - a form with data-confirm="<question>" asks before it is sent (irreversible actions);
// - a button with data-copy="<css selector>" copies that element's value or text;
// - the menu button opens and closes the sidebar on small screens;
// - tabs ([data-tabs]: a role=tablist of buttons over role=tabpanel sections): without
//   script every section shows; with it, one at a time — the one in the URL's #, else one
//   holding a field with an error, else the one last open on this page, else the first;
// - a table box (.table-wrap, tabindex=0 so a keyboard can scroll it) leaves the tab
//   order while its table fits.
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(done, function () { select(source); });
    } else {
      select(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: the user copies */ }
    }
  });

  function select(source) {
    if (source.select) { source.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  var toggle = document.getElementById("menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      document.body.classList.toggle("menu-open", open);
    });
  }

  function tabStops() {
    document.querySelectorAll(".table-wrap").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth) box.setAttribute("tabindex", "0");
      else box.removeAttribute("tabindex");
    });
  }
  tabStops();
  window.addEventListener("resize", tabStops);

  document.querySelectorAll("[data-tabs]").forEach(function (holder) {
    var list = holder.querySelector('[role="tablist"]');
    var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
    var panel = function (tab) { return document.getElementById(tab.getAttribute("aria-controls")); };
    var key = "tab:" + window.location.pathname;
    function show(tab, focus) {
      tabs.forEach(function (other) {
        var on = other === tab;
        other.setAttribute("aria-selected", on ? "true" : "false");
        other.setAttribute("tabindex", on ? "0" : "-1");
        panel(other).hidden = !on;
      });
      if (focus) tab.focus();
      try { sessionStorage.setItem(key, tab.id); } catch (e) { /* private mode: no memory */ }
    }
    var byPanel = function (id) { return tabs.filter(function (t) { return t.getAttribute("aria-controls") === id; })[0]; };
    var withError = tabs.filter(function (t) { return panel(t).querySelector('[aria-invalid="true"], .has-error'); })[0];
    var remembered = null;
    try { remembered = document.getElementById(sessionStorage.getItem(key)); } catch (e) { /* none */ }
    var first = byPanel(window.location.hash.slice(1)) || withError ||
                (tabs.indexOf(remembered) >= 0 ? remembered : null) || tabs[0];
    list.hidden = false;
    show(first, false);
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { show(tab, false); history.replaceState(null, "", "#" + tab.getAttribute("aria-controls")); });
      tab.addEventListener("keydown", function (event) {
        var step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
        if (step) { event.preventDefault(); show(tabs[(i + step + tabs.length) % tabs.length], true); }
      });
    });
  });
})();
