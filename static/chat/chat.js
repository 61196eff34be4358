// The chat page: send prompts, read the answer as it streams, keep the
// sidebar and settings in step. Text from miners is only ever set through
// textContent while it streams; the finished answer is HTML the server
// rendered and sanitized (chat/markdown.py).
(function () {
  "use strict";

  const root = document.getElementById("chat");
  if (!root) return;

  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const messagesEl = document.getElementById("messages");
  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const sendButton = document.getElementById("send");
  const titleEl = document.getElementById("conversation-title");
  const list = document.getElementById("conversation-list");
  const settingsPanel = document.getElementById("settings");
  const sidebar = document.getElementById("sidebar");
  let conversationId = root.dataset.conversation || null;
  let busy = false;

  // --- settings panel --------------------------------------------------------------
  const SETTINGS_KEY = "chat-settings";
  const fields = {
    topN: document.getElementById("top-n"),
    uids: document.getElementById("uids"),
    firstSuccess: document.getElementById("first-success"),
    inParallel: document.getElementById("in-parallel"),
  };

  function strategy() {
    const checked = document.querySelector('input[name="strategy"]:checked');
    return checked ? checked.value : "auto";
  }

  function currentSettings() {
    return {
      strategy: strategy(),
      top_n: fields.topN.value,
      uids: fields.uids.value,
      respond_on_first_success: fields.firstSuccess.checked,
      in_parallel: fields.inParallel.value || null,
    };
  }

  function saveSettings() {
    try {
      localStorage.setItem(SETTINGS_KEY, JSON.stringify(currentSettings()));
    } catch (e) {
      /* private mode: settings last for this page only */
    }
  }

  function loadSettings() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "null");
    } catch (e) {
      saved = null;
    }
    if (!saved) return;
    const radio = document.querySelector('input[name="strategy"][value="' + saved.strategy + '"]');
    if (radio) radio.checked = true;
    if (saved.top_n) fields.topN.value = saved.top_n;
    if (typeof saved.uids === "string") fields.uids.value = saved.uids;
    fields.firstSuccess.checked = saved.respond_on_first_success !== false;
    fields.inParallel.value = saved.in_parallel || "";
  }

  loadSettings();
  settingsPanel.addEventListener("change", saveSettings);
  settingsPanel.addEventListener("input", function (event) {
    if (event.target === fields.topN) document.getElementById("strategy-top-n").checked = true;
    if (event.target === fields.uids) document.getElementById("strategy-uids").checked = true;
    saveSettings();
  });

  function toggle(button, panel, openClass) {
    button.addEventListener("click", function () {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      if (openClass) panel.classList.toggle(openClass, open);
      else panel.hidden = !open;
    });
  }
  toggle(document.getElementById("toggle-settings"), settingsPanel, null);
  const sidebarButton = document.getElementById("toggle-sidebar");
  toggle(sidebarButton, sidebar, "open");
  function closeSidebar() {
    sidebar.classList.remove("open");
    sidebarButton.setAttribute("aria-expanded", "false");
  }
  document.getElementById("close-sidebar").addEventListener("click", function () {
    closeSidebar();
    sidebarButton.focus();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && sidebar.classList.contains("open")) closeSidebar();
  });

  // --- the UID picker --------------------------------------------------------------
  const search = document.getElementById("neuron-search");
  const results = document.getElementById("neuron-results");
  let searchTimer = null;

  function chosenUids() {
    return fields.uids.value
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number)
      .filter(function (n) {
        return Number.isInteger(n) && n >= 0;
      });
  }

  function setUid(uid, on) {
    let uids = chosenUids().filter(function (u) {
      return u !== uid;
    });
    if (on) uids.push(uid);
    fields.uids.value = uids.join(", ");
    document.getElementById(uids.length ? "strategy-uids" : "strategy-auto").checked = true;
    saveSettings();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function statsText(n) {
    if (!n.requests) return "no calls in the last 24 h";
    const rate = n.success_rate === null ? "?" : Math.round(n.success_rate * 100) + "% ok";
    const p50 = n.p50_ms === null ? "" : " · p50 " + Math.round(n.p50_ms) + " ms";
    const cancelled = n.cancelled ? " (" + n.cancelled + " cancelled)" : "";
    return rate + p50 + " · " + n.requests + " calls" + cancelled;
  }

  function showNeurons(neurons) {
    results.replaceChildren();
    if (!neurons.length) {
      results.appendChild(el("li", "hint", "No miner matches."));
      return;
    }
    const chosen = chosenUids();
    neurons.forEach(function (n) {
      const item = el("li", "neuron");
      const button = el("button", "pick", "uid " + n.uid);
      button.type = "button";
      button.setAttribute("aria-pressed", String(chosen.includes(n.uid)));
      button.setAttribute("aria-label", "Use uid " + n.uid);
      button.addEventListener("click", function () {
        const on = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", String(on));
        setUid(n.uid, on);
      });
      item.appendChild(button);
      const about = el("div", "about");
      about.appendChild(el("span", "description", n.description || "(no description)"));
      const tags = el("span", "tags");
      n.tags.forEach(function (t) {
        tags.appendChild(el("span", "tag", t));
      });
      about.appendChild(tags);
      about.appendChild(el("span", "stats", (n.serving ? "" : "not serving · ") + statsText(n)));
      item.appendChild(about);
      results.appendChild(item);
    });
  }

  function runSearch() {
    const url = root.dataset.neuronsUrl + "?q=" + encodeURIComponent(search.value);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        return r.ok ? r.json() : { neurons: [] };
      })
      .then(function (data) {
        showNeurons(data.neurons || []);
      })
      .catch(function () {
        results.replaceChildren(el("li", "hint", "Could not search the miners."));
      });
  }
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  });
  search.addEventListener("focus", function () {
    if (!results.children.length) runSearch();
  });

  // --- conversations -----------------------------------------------------------------
  function adopt(conversation) {
    titleEl.textContent = conversation.title;
    document.title = conversation.title + " · Chat · Validator Endpoint";
    if (!conversationId) {
      conversationId = String(conversation.id);
      history.replaceState(null, "", conversation.url);
    }
    let link = list.querySelector('a[data-id="' + conversation.id + '"]');
    if (!link) {
      link = el("a", null, conversation.title);
      link.href = conversation.url;
      link.dataset.id = conversation.id;
      const item = el("li");
      item.appendChild(link);
      list.prepend(item);
    } else {
      link.textContent = conversation.title;
      list.prepend(link.parentElement);
    }
    list.querySelectorAll("a").forEach(function (a) {
      if (a === link) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  // --- messages ----------------------------------------------------------------------
  function scrollDown() {
    messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function fromHtml(html) {
    const template = document.createElement("template");
    template.innerHTML = html; // server-rendered, sanitized with nh3
    return template.content;
  }

  function addUserMessage(text) {
    const hint = document.getElementById("empty-hint");
    if (hint) hint.remove();
    const article = el("article", "message message-user");
    article.setAttribute("aria-label", "You");
    article.appendChild(el("div", "bubble plain", text));
    messagesEl.appendChild(article);
  }

  function pendingAnswer() {
    const article = el("article", "message message-assistant pending");
    article.setAttribute("aria-label", "Answer");
    article.setAttribute("aria-busy", "true");
    const meta = el("header", "answer-meta");
    meta.appendChild(el("span", "waiting", "Asking the miners…"));
    article.appendChild(meta);
    const body = el("div", "bubble plain streaming");
    article.appendChild(body);
    messagesEl.appendChild(article);
    scrollDown();
    return { article: article, meta: meta, body: body };
  }

  function showStart(answer, event) {
    answer.meta.replaceChildren();
    const badge = el("span", "badge uid-badge", "uid " + event.uid);
    badge.title = "Answered by uid " + event.uid;
    answer.meta.appendChild(badge);
    const hotkey = el("span", "hotkey", event.hotkey.slice(0, 12) + "…");
    hotkey.title = event.hotkey;
    answer.meta.appendChild(hotkey);
    if (event.failed && event.failed.length) {
      answer.meta.appendChild(
        el(
          "span",
          "failed-inline",
          "Failed: " +
            event.failed
              .map(function (f) {
                return "uid " + f.uid;
              })
              .join(", "),
        ),
      );
    }
  }

  function showError(answer, text) {
    const notice = el("p", "answer-error", text);
    notice.setAttribute("role", "alert");
    if (answer) {
      answer.article.classList.remove("pending");
      answer.article.removeAttribute("aria-busy");
      if (!answer.body.textContent) answer.body.remove();
      const waiting = answer.meta.querySelector(".waiting");
      if (waiting) waiting.remove();
      answer.article.appendChild(notice);
    } else {
      messagesEl.appendChild(notice);
    }
    scrollDown();
  }

  function finish(answer, html) {
    answer.article.replaceWith(fromHtml(html));
    scrollDown();
  }

  function handle(answer, event) {
    if (event.event === "conversation") adopt(event);
    else if (event.event === "start") showStart(answer, event);
    else if (event.event === "delta") {
      answer.body.textContent += event.text;
      scrollDown();
    } else if (event.event === "done") {
      finish(answer, event.html);
      const balance = document.getElementById("balance");
      if (balance) balance.textContent = event.balance === null ? "unlimited" : String(event.balance);
    }
    else if (event.event === "error") showError(answer, event.message);
  }

  async function readEvents(response, answer) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) handle(answer, JSON.parse(line));
      }
    }
    if (buffered.trim()) handle(answer, JSON.parse(buffered));
  }

  async function send(text) {
    busy = true;
    sendButton.disabled = true;
    addUserMessage(text);
    const answer = pendingAnswer();
    try {
      const response = await fetch(root.dataset.sendUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/x-ndjson" },
        body: JSON.stringify({ conversation: conversationId, content: text, settings: currentSettings() }),
      });
      const type = response.headers.get("Content-Type") || "";
      if (response.redirected || !(type.includes("ndjson") || type.includes("json"))) {
        // login_required sent the request to the sign-in page.
        showError(answer, "Your session has ended. Reload the page and sign in again.");
        return;
      }
      if (!response.ok) {
        let body = {};
        try {
          body = await response.json();
        } catch (e) {
          body = { error: "The server answered " + response.status + "." };
        }
        if (response.status === 403 && !body.error) body.error = "Your session has ended; reload the page.";
        if (body.conversation) adopt(body.conversation);
        if (body.html) finish(answer, body.html);
        else showError(answer, body.error || "Something went wrong.");
        return;
      }
      await readEvents(response, answer);
    } catch (e) {
      showError(answer, "The connection was lost before the answer ended.");
    } finally {
      busy = false;
      sendButton.disabled = false;
      prompt.focus();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || busy) return;
    prompt.value = "";
    send(text);
  });

  prompt.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter (and Enter while composing with an IME) is a newline.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  scrollDown();
})();
