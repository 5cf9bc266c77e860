// ipdebug's native debugger: PIN prompt and consoles.
//
// The page reads without this script; it only adds what needs a server
// round trip. The PIN and console input travel in POST bodies, with the
// page's secret in the X-IPDebug-Secret header: never in a URL, so access
// logs, proxies and browser history do not record them.
(function () {
  "use strict";

  var main = document.querySelector("main.ipdebug");
  if (!main) {
    return;
  }
  var SECRET = main.getAttribute("data-secret");
  var trusted = main.getAttribute("data-trusted") === "true";
  var pinForm = document.querySelector("form.pin");
  var history = [];

  function endpoint(cmd) {
    return window.location.pathname + "?__debugger__=yes&cmd=" + cmd;
  }

  function post(cmd, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (key) {
      body.append(key, fields[key]);
    });
    return fetch(endpoint(cmd), {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "X-IPDebug-Secret": SECRET,
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"
      },
      body: body.toString()
    });
  }

  function enable(root) {
    var disabled = root.querySelectorAll("[disabled]");
    for (var i = 0; i < disabled.length; i++) {
      disabled[i].disabled = false;
    }
  }

  // The plain-text traceback: one click to copy.
  var copy = document.querySelector("#plain button.copy");
  if (copy) {
    copy.disabled = false;
    copy.addEventListener("click", function () {
      var area = document.querySelector("#plain textarea");
      area.select();
      var done = function () {
        copy.textContent = "Copied";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  }

  // The PIN prompt.
  function showPin(message) {
    if (!pinForm) {
      return;
    }
    pinForm.hidden = false;
    pinForm.querySelector(".pin-status").textContent = message || "";
    pinForm.querySelector("input").focus();
  }

  if (pinForm) {
    enable(pinForm);
    pinForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = pinForm.querySelector("input");
      var status = pinForm.querySelector(".pin-status");
      status.textContent = "Checking…";
      post("pinauth", { pin: input.value })
        .then(function (response) {
          if (!response.ok) {
            return response.text().then(function (text) {
              throw new Error(text);
            });
          }
          return response.json();
        })
        .then(function (answer) {
          input.value = "";
          if (answer.auth) {
            trusted = true;
            status.textContent = "Unlocked.";
            pinForm.hidden = true;
            var pending = document.querySelector(".open-console[data-pending]");
            if (pending) {
              pending.removeAttribute("data-pending");
              openConsole(pending);
            }
          } else if (answer.exhausted) {
            status.textContent =
              "Too many wrong PINs: the console is locked until the window ends.";
          } else {
            status.textContent = "Wrong PIN.";
            input.focus();
          }
        })
        .catch(function (error) {
          status.textContent = "Could not check the PIN: " + error.message;
        });
    });
  }

  // Consoles, one per frame, opened on demand.
  function openConsole(button) {
    if (!trusted) {
      button.setAttribute("data-pending", "1");
      showPin("Enter the PIN to open the console.");
      return;
    }
    var existing = button.nextElementSibling;
    if (existing && existing.classList.contains("console")) {
      existing.hidden = !existing.hidden;
      button.setAttribute("aria-expanded", String(!existing.hidden));
      if (!existing.hidden) {
        existing.querySelector("textarea").focus();
      }
      return;
    }
    var frame = button.getAttribute("data-frame");
    var box = document.createElement("div");
    box.className = "console";
    var id = "console-input-" + frame;
    box.innerHTML =
      '<div class="transcript" aria-live="polite"></div>' +
      '<form class="console-form">' +
      '<label for="' + id + '">Python in this frame ' +
      "(Enter runs, Shift+Enter starts a new line, Up/Down recall history)</label>" +
      '<textarea id="' + id + '" name="code" rows="2" spellcheck="false" ' +
      'autocomplete="off"></textarea>' +
      '<button type="submit">Run</button></form>';
    button.insertAdjacentElement("afterend", box);
    button.setAttribute("aria-expanded", "true");
    var form = box.querySelector("form");
    var area = box.querySelector("textarea");
    var transcript = box.querySelector(".transcript");
    var position = history.length;

    function grow() {
      area.rows = Math.min(12, Math.max(2, area.value.split("\n").length));
    }

    function run() {
      var code = area.value;
      if (!code.trim()) {
        return;
      }
      if (history[history.length - 1] !== code) {
        history.push(code);
      }
      position = history.length;
      area.value = "";
      grow();
      var entry = document.createElement("div");
      entry.className = "entry pending";
      entry.textContent = "Running…";
      transcript.appendChild(entry);
      post("eval", { frm: frame, code: code })
        .then(function (response) {
          return response.text().then(function (text) {
            return { ok: response.ok, status: response.status, text: text };
          });
        })
        .then(function (answer) {
          entry.classList.remove("pending");
          if (answer.ok) {
            // Escaped by the server: the fragment holds only <pre> elements.
            entry.innerHTML = answer.text;
          } else {
            entry.classList.add("refused");
            entry.textContent = answer.text;
            if (answer.status === 403 && /PIN/.test(answer.text)) {
              trusted = false;
              showPin("Enter the PIN again.");
            }
          }
          entry.scrollIntoView({ block: "nearest" });
        })
        .catch(function (error) {
          entry.classList.remove("pending");
          entry.textContent = "The request failed: " + error.message;
        });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run();
    });
    area.addEventListener("input", grow);
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        run();
        return;
      }
      var before = area.value.slice(0, area.selectionStart);
      var after = area.value.slice(area.selectionEnd);
      if (event.key === "ArrowUp" && before.indexOf("\n") === -1 && position > 0) {
        event.preventDefault();
        position -= 1;
        area.value = history[position];
        grow();
      } else if (event.key === "ArrowDown" && after.indexOf("\n") === -1 &&
                 position < history.length) {
        event.preventDefault();
        position += 1;
        area.value = position < history.length ? history[position] : "";
        grow();
      }
    });
    area.focus();
  }

  var buttons = document.querySelectorAll("button.open-console");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].disabled = false;
    buttons[i].setAttribute("aria-expanded", "false");
    buttons[i].addEventListener("click", function (event) {
      openConsole(event.currentTarget);
    });
  }
})();
