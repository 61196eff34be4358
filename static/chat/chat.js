// The chat page's panels: the settings (kept in localStorage, the subnet
// picked among them), the UID picker
// and the sidebar. The conversation itself is conversation.js, which reads
// the settings through root.chatSettings().
(function () {
  "use strict";

  const root = document.getElementById("chat");
  if (!root) return;

  const settingsPanel = document.getElementById("settings");
  const sidebar = document.getElementById("sidebar");

  // --- settings panel --------------------------------------------------------------
  const SETTINGS_KEY = "chat-settings";
  const fields = {
    topN: document.getElementById("top-n"),
    bestN: document.getElementById("best-n"),
    uids: document.getElementById("uids"),
    firstSuccess: document.getElementById("first-success"),
    inParallel: document.getElementById("in-parallel"),
    subnet: document.getElementById("subnet"),
    images: document.getElementById("images"),
  };
  const imagesRow = document.getElementById("images-row");
  const promptField = document.getElementById("prompt");
  const PLACEHOLDERS = {
    chat: "Message the subnet…",
    image: "Describe the image to draw…",
    speech: "Text to speak…",
  };

  // The picked subnet's kind: chat, image or speech (the chat subnet when none is listed).
  function subnetKind() {
    const option = fields.subnet.selectedOptions[0];
    return option ? option.dataset.kind : "chat";
  }

  function showSubnetKind() {
    const kind = subnetKind();
    imagesRow.hidden = kind !== "image";
    promptField.placeholder = PLACEHOLDERS[kind] || PLACEHOLDERS.chat;
  }

  function strategy() {
    const checked = document.querySelector('input[name="strategy"]:checked');
    return checked ? checked.value : "auto";
  }

  function currentSettings() {
    return {
      strategy: strategy(),
      top_n: fields.topN.value,
      best_n: fields.bestN.value,
      uids: fields.uids.value,
      respond_on_first_success: fields.firstSuccess.checked,
      in_parallel: fields.inParallel.value || null,
      subnet: fields.subnet.value || "",
      images: fields.images.value,
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
    if (saved.best_n) fields.bestN.value = saved.best_n;
    if (typeof saved.uids === "string") fields.uids.value = saved.uids;
    fields.firstSuccess.checked = saved.respond_on_first_success !== false;
    fields.inParallel.value = saved.in_parallel || "";
    // A subnet no longer offered (disabled, removed) falls back to the first: chat.
    const offered = Array.prototype.some.call(fields.subnet.options, function (o) {
      return o.value === saved.subnet;
    });
    if (offered) fields.subnet.value = saved.subnet;
    if (saved.images) fields.images.value = saved.images;
  }

  loadSettings();
  showSubnetKind();
  fields.subnet.addEventListener("change", showSubnetKind);
  root.chatSettings = currentSettings;
  settingsPanel.addEventListener("change", saveSettings);
  settingsPanel.addEventListener("input", function (event) {
    if (event.target === fields.topN) document.getElementById("strategy-top-n").checked = true;
    if (event.target === fields.bestN) document.getElementById("strategy-best").checked = true;
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
})();
