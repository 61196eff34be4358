// The conversation: send a message and read its answer as it streams; Stop,
// Regenerate, Retry, Copy and Edit. Text from miners is only ever set through
// textContent while it streams; finished messages are HTML the server
// rendered and sanitized (chat/markdown.py, templates/chat/_message.html).
(function () {
  "use strict";

  const root = document.getElementById("chat");
  if (!root) return;

  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const messagesEl = document.getElementById("messages");
  const form = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const titleEl = document.getElementById("conversation-title");
  const list = document.getElementById("conversation-list");
  let conversationId = root.dataset.conversation || null;
  let running = null; // the answer being asked for: { controller, answer }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, text) {
    const node = el("button", className, text);
    node.type = "button";
    return node;
  }

  function scrollDown() {
    messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  // Server-rendered, sanitized with nh3: its first element replaces ``node``.
  function replaceWithHtml(node, html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const first = template.content.firstElementChild;
    node.replaceWith(template.content);
    return first;
  }

  // --- the conversation in the sidebar ---------------------------------------------
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

  // --- an answer as it arrives -------------------------------------------------------
  function userMessage(text) {
    const hint = document.getElementById("empty-hint");
    if (hint) hint.remove();
    const article = el("article", "message message-user");
    article.setAttribute("aria-label", "You");
    article.appendChild(el("div", "bubble plain", text));
    messagesEl.appendChild(article);
    return article;
  }

  function pendingAnswer(promptEl) {
    const article = el("article", "message message-assistant pending");
    article.setAttribute("aria-label", "Answer");
    article.setAttribute("aria-busy", "true");
    const meta = el("header", "answer-meta");
    meta.appendChild(el("span", "waiting", "Asking the miners…"));
    article.appendChild(meta);
    const body = el("div", "bubble plain streaming");
    article.appendChild(body);
    promptEl.after(article);
    scrollDown();
    return { article: article, meta: meta, body: body, prompt: promptEl };
  }

  function showStart(answer, event) {
    answer.article.dataset.id = event.id;
    answer.meta.replaceChildren();
    const badge = el("span", "badge uid-badge", "uid " + event.uid);
    badge.title = "Answered by uid " + event.uid;
    answer.meta.appendChild(badge);
    const hotkey = el("span", "hotkey", event.hotkey.slice(0, 12) + "…");
    hotkey.title = event.hotkey;
    answer.meta.appendChild(hotkey);
    if (event.failed && event.failed.length) {
      const uids = event.failed.map(function (f) {
        return "uid " + f.uid;
      });
      answer.meta.appendChild(el("span", "failed-inline", "Failed: " + uids.join(", ")));
    }
  }

  function settle(answer) {
    answer.article.classList.remove("pending");
    answer.article.removeAttribute("aria-busy");
    if (!answer.body.textContent) answer.body.remove();
    const waiting = answer.meta.querySelector(".waiting");
    if (waiting) waiting.remove();
  }

  // The answer as the server keeps it too: what was said, marked stopped.
  function showStopped(answer) {
    settle(answer);
    answer.article.appendChild(el("p", "answer-stopped", "Stopped before the end of the answer."));
    const actions = el("div", "message-actions");
    if (answer.body.textContent) {
      const copy = button("action copy", "Copy");
      copy.dataset.text = answer.body.textContent;
      actions.appendChild(copy);
    }
    actions.appendChild(button("action retry when-idle", "Retry"));
    answer.article.appendChild(actions);
  }

  // Stopped before the server said anything: the message was not kept
  // (chat.services.stop_unanswered); its text goes back to the composer.
  function takeBack(answer) {
    answer.article.remove();
    answer.prompt.remove();
    if (!prompt.value) prompt.value = answer.prompt.querySelector(".bubble").textContent;
  }

  function showError(answer, text) {
    settle(answer);
    const notice = el("p", "answer-error", text);
    notice.setAttribute("role", "alert");
    answer.article.appendChild(notice);
    scrollDown();
  }

  function showBalance(balance) {
    const shown = document.getElementById("balance");
    if (shown) shown.textContent = balance === null ? "unlimited" : String(balance);
  }

  function handle(answer, event) {
    if (event.event === "conversation") adopt(event);
    else if (event.event === "prompt") answer.prompt = replaceWithHtml(answer.prompt, event.html);
    else if (event.event === "start") showStart(answer, event);
    else if (event.event === "delta") {
      answer.body.textContent += event.text;
      scrollDown();
    } else if (event.event === "done") {
      answer.article = replaceWithHtml(answer.article, event.html);
      showBalance(event.balance);
      scrollDown();
    }
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

  async function showRefusal(response, answer) {
    let body = {};
    try {
      body = await response.json();
    } catch (e) {
      body = { error: "The server answered " + response.status + "." };
    }
    if (response.status === 403 && !body.error) body.error = "Your session has ended; reload the page.";
    if (body.conversation) adopt(body.conversation);
    if (body.prompt_html) answer.prompt = replaceWithHtml(answer.prompt, body.prompt_html);
    if (body.html) answer.article = replaceWithHtml(answer.article, body.html);
    else showError(answer, body.error || "Something went wrong.");
    scrollDown();
  }

  // Ask ``url`` for the answer to ``promptEl``'s message, shown as it arrives.
  async function ask(url, body, promptEl) {
    const controller = new AbortController();
    const answer = pendingAnswer(promptEl);
    running = { controller: controller, answer: answer };
    root.classList.add("busy");
    sendButton.hidden = true;
    stopButton.hidden = false;
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/x-ndjson" },
        body: JSON.stringify(Object.assign({ settings: root.chatSettings() }, body)),
        signal: controller.signal,
      });
      const type = response.headers.get("Content-Type") || "";
      if (response.redirected || !type.includes("json")) {
        // login_required sent the request to the sign-in page.
        showError(answer, "Your session has ended. Reload the page and sign in again.");
      } else if (!response.ok) {
        await showRefusal(response, answer);
      } else {
        await readEvents(response, answer);
      }
    } catch (e) {
      if (!controller.signal.aborted) showError(answer, "The connection was lost before the answer ended.");
      else if (answer.prompt.dataset.regenerateUrl) showStopped(answer);
      else takeBack(answer);
    } finally {
      running = null;
      root.classList.remove("busy");
      stopButton.hidden = true;
      sendButton.hidden = false;
      if (!document.querySelector(".message form.edit")) prompt.focus();
    }
  }

  stopButton.addEventListener("click", function () {
    if (running) running.controller.abort();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || running) return;
    prompt.value = "";
    ask(root.dataset.sendUrl, { conversation: conversationId, content: text }, userMessage(text));
  });

  prompt.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter (and Enter while composing with an IME) is a newline.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // --- the buttons on each message -------------------------------------------------------
  function dropAfter(article) {
    while (article.nextElementSibling) article.nextElementSibling.remove();
  }

  function promptBefore(article) {
    let node = article.previousElementSibling;
    while (node && !node.classList.contains("message-user")) node = node.previousElementSibling;
    return node;
  }

  function copy(target) {
    // The clipboard API needs a secure page (https, or localhost).
    const written = navigator.clipboard ? navigator.clipboard.writeText(target.dataset.text) : Promise.reject();
    written
      .then(
        function () {
          return "Copied";
        },
        function () {
          return "Copy failed";
        },
      )
      .then(function (said) {
        target.textContent = said;
        setTimeout(function () {
          target.textContent = "Copy";
        }, 1500);
      });
  }

  function answerAgain(answerEl) {
    const promptEl = promptBefore(answerEl);
    if (!promptEl || !promptEl.dataset.regenerateUrl) return;
    dropAfter(promptEl);
    ask(promptEl.dataset.regenerateUrl, {}, promptEl);
  }

  function edit(article) {
    if (article.querySelector("form.edit")) return;
    const bubble = article.querySelector(".bubble");
    const actions = article.querySelector(".message-actions");
    const editor = el("form", "edit");
    const area = el("textarea");
    area.value = article.querySelector(".copy").dataset.text;
    area.rows = 3;
    area.setAttribute("aria-label", "Edit your message");
    const row = el("div", "row");
    const save = el("button", "primary", "Send edited");
    save.type = "submit";
    const cancel = button("", "Cancel");
    row.append(save, cancel);
    editor.append(area, row);
    bubble.hidden = actions.hidden = true;
    article.appendChild(editor);
    area.focus();
    function close() {
      editor.remove();
      bubble.hidden = actions.hidden = false;
    }
    cancel.addEventListener("click", close);
    editor.addEventListener("submit", function (event) {
      event.preventDefault();
      const text = area.value.trim();
      if (!text || running) return;
      close();
      bubble.textContent = text;
      dropAfter(article);
      ask(article.dataset.editUrl, { content: text }, article);
    });
  }

  messagesEl.addEventListener("click", function (event) {
    const target = event.target.closest("button.action");
    if (!target) return;
    const article = target.closest("article.message");
    if (target.classList.contains("copy")) copy(target);
    else if (running) return;
    else if (target.classList.contains("edit")) edit(article);
    else if (target.classList.contains("regenerate") || target.classList.contains("retry")) answerAgain(article);
  });

  scrollDown();
})();
