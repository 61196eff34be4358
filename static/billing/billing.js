// The billing page: Stripe.js turns the card into a token in the browser (the
// card number never reaches us), we charge it, and the credits arrive when
// Stripe's webhook confirms the payment; this page only follows it.
(function () {
  "use strict";
  const root = document.getElementById("billing");
  const form = document.getElementById("pay-form");
  const statusLine = document.getElementById("pay-status");
  const button = form.querySelector("button[type=submit]");
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const stripe = Stripe(root.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");

  function say(text) { statusLine.textContent = text; }
  function fail(text) { say(text || "The payment did not go through."); button.disabled = false; }

  async function follow(paymentId) {
    const url = root.dataset.statusUrl.replace(/0\/$/, paymentId + "/");
    for (let i = 0; i < 60; i++) {
      await new Promise(function (resolve) { setTimeout(resolve, 1000); });
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) continue;
      const body = await response.json();
      if (body.status === "pending") continue;
      if (body.balance !== null) document.getElementById("balance").textContent = body.balance;
      if (body.status === "succeeded") say("Payment received: your credits were added.");
      else fail("Payment " + body.status.replace("_", " ") + ".");
      button.disabled = false;
      return;
    }
    say("Still waiting for Stripe to confirm the payment; reload this page in a moment.");
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    button.disabled = true;
    say("Paying…");
    const tokenResult = await stripe.createToken(card);
    if (tokenResult.error) return fail(tokenResult.error.message || "Check the card details.");
    const pack = form.querySelector("input[name=pack]:checked").value;
    let response, body;
    try {
      response = await fetch(root.dataset.payUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
        body: JSON.stringify({ pack: pack, token: tokenResult.token.id }),
      });
      body = await response.json();
    } catch (error) {
      return fail("The server could not be reached; nothing was charged. Try again.");
    }
    if (!response.ok) return fail(body.error);
    if (body.client_secret) {
      const confirmed = await stripe.confirmCardPayment(body.client_secret);
      if (confirmed.error) return fail(confirmed.error.message);
    }
    say("Payment accepted; waiting for Stripe to confirm it…");
    follow(body.payment);
  });
})();
