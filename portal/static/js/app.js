/* Small progressive enhancements. Loaded with `defer`; no inline script or style
 * is needed anywhere (strict CSP). Pages work without this file. */
(function () {
  "use strict";

  /* data-confirm="Question?" on a form, or on the button that submits it, asks
   * before submitting. Capture phase on document runs before htmx's own listener,
   * so a cancelled confirm stops htmx requests as well as plain submissions. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var source = submitter && submitter.hasAttribute("data-confirm") ? submitter : form;
    var question = source.getAttribute && source.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* data-confirm on a link or a non-submitting htmx element (hx-post on a button
   * outside a form). Submit buttons are left to the submit listener above. */
  document.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[data-confirm]");
    if (!el || el.tagName === "FORM" || (el.form && (el.type === "submit" || el.type === "image"))) {
      return;
    }
    if (!window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* <time data-countdown="2026-11-24T22:30:00Z">until 2:30 PM PST</time>:
   * the server's text stays until the first tick replaces it with "mm:ss left". */
  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function renderCountdown(el, now) {
    var end = Date.parse(el.getAttribute("data-countdown"));
    if (isNaN(end)) {
      return;
    }
    var left = Math.floor((end - now) / 1000);
    if (left <= 0) {
      if (!el.classList.contains("is-expired")) {
        el.textContent = "expired";
        el.classList.add("is-expired");
        el.dispatchEvent(new CustomEvent("countdown:expired", { bubbles: true }));
      }
      return;
    }
    var hours = Math.floor(left / 3600);
    var minutes = Math.floor((left % 3600) / 60);
    var seconds = left % 60;
    var text = (hours ? hours + ":" + pad(minutes) : pad(minutes)) + ":" + pad(seconds) + " left";
    if (el.textContent !== text) {
      el.textContent = text;
    }
    el.classList.toggle("is-urgent", left < 120);
  }

  function tick() {
    var now = Date.now();
    // Queried every tick, so countdowns swapped in by htmx start on their own.
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      renderCountdown(el, now);
    });
  }

  tick();
  window.setInterval(tick, 1000);

  /* htmx does not swap error responses: tell the person something went wrong. */
  function showFlash(text) {
    var area = document.querySelector("[data-flash-area]");
    if (!area) {
      return;
    }
    var note = document.createElement("div");
    note.className = "flash error";
    note.textContent = text;
    area.appendChild(note);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 400 || status === 403) {
      showFlash("That didn't go through. Your session may have expired: please reload the page and try again.");
    } else if (status === 429) {
      showFlash("Too many requests. Please wait a moment and try again.");
    } else {
      showFlash("Something went wrong (error " + status + "). Please try again.");
    }
  });

  document.addEventListener("htmx:sendError", function () {
    showFlash("We couldn't reach the server. Check your connection and try again.");
  });
  /* "Not your time zone?": when the phone's own zone is not the one the page uses,
   * preselect it and say so (the page works the same without this). */
  document.querySelectorAll("select[data-device-zone]").forEach(function (select) {
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (err) {
      return;
    }
    if (!zone || select.value === zone) {
      return;
    }
    var option = Array.prototype.find.call(select.options, function (o) { return o.value === zone; });
    if (!option) {
      return;
    }
    select.value = zone;
    var hint = select.form && select.form.querySelector("[data-device-zone-hint]");
    if (hint) {
      hint.textContent = "Your phone is set to " + option.textContent + ".";
      hint.hidden = false;
    }
    var details = select.closest("details");
    if (details) {
      details.open = true;
    }
  });
})();
