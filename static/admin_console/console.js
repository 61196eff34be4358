// The operator's console: copy buttons. A button with data-copy-target copies
// the text of the element with that id.
"use strict";

function copyWithSelection(text) {
  // navigator.clipboard needs a secure context; plain-HTTP consoles on a LAN fall back to this.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied;
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  const text = source.textContent.trim();
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch (error) {
    copied = copyWithSelection(text);
  }
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = copied ? "Copied" : "Copy failed: select and copy by hand";
  button.classList.toggle("copied", copied);
  setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 2000);
});

// The request logs' key filter: choosing (or clearing) a key reloads the list
// with it. select2 reports the choice through jQuery, not a DOM event.
window.addEventListener("load", () => {
  if (!window.django || !django.jQuery) return;
  django.jQuery("form.key-filter select").on("change", function () { this.form.submit(); });
});
