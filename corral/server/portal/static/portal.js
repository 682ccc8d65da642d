// When a page's live stream drops (the server restarts, the network goes), what
// the page shows stops changing without anyone noticing: grey it and say since
// when, as the rows of a service host that stopped answering are greyed. The
// stream reconnects by itself; its first events bring every row up to date, and
// the marks go.
(function () {
  "use strict";

  function streamOf(event) {
    var elt = (event.detail && event.detail.elt) || event.target;
    return elt && elt.closest ? elt.closest("[sse-connect]") : null;
  }

  function ended(stream) {
    // The session ended: the stream's own "ended" part says so; nothing to add.
    var part = stream.querySelector('[sse-swap="ended"]');
    return part !== null && part.children.length > 0;
  }

  function say(text) {
    var notice = document.getElementById("notice");
    if (notice !== null) {
      var line = document.createElement("p");
      line.textContent = text;
      notice.replaceChildren(line);
    }
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  document.addEventListener("htmx:sseError", function (event) {
    var stream = streamOf(event);
    if (stream === null || stream.classList.contains("live-lost") || ended(stream)) {
      return;
    }
    stream.classList.add("live-lost");
    stream.setAttribute("aria-describedby", "notice");
    say("Live updates lost at " + clock() +
        ": what is shown is the last reading before then. Reconnecting...");
  });

  document.addEventListener("htmx:sseOpen", function (event) {
    var stream = streamOf(event);
    if (stream === null || !stream.classList.contains("live-lost")) {
      return;
    }
    stream.classList.remove("live-lost");
    stream.removeAttribute("aria-describedby");
    say("Live updates are back at " + clock() + ".");
  });
})();
