// The keys page: copy the new key's full text to the clipboard.
(function () {
  "use strict";

  const button = document.getElementById("copy-key");
  if (!button) return;
  const field = document.getElementById(button.dataset.copies);
  const status = document.getElementById("copy-status");

  function copied(ok) {
    button.textContent = ok ? "Copied" : "Copy";
    status.textContent = ok ? "" : "Could not copy: select the key and copy it yourself.";
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { copied(true); },
        function () { copied(false); },
      );
    } else {
      // Plain http on a host other than localhost has no clipboard API.
      copied(document.execCommand("copy"));
    }
  });
})();
