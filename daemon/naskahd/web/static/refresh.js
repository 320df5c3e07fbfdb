// The dashboard reloads itself every data-refresh seconds (no inline script: the page's
// Content-Security-Policy allows scripts from this site's files only).
(function () {
  var seconds = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (seconds > 0) {
    document.body.setAttribute("data-refreshing", String(seconds));
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
