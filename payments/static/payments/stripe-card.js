// Stripe Elements (only loaded when Stripe keys are configured): the card number goes to Stripe,
// never to this server. We confirm a SetupIntent in the browser and post its id back.
(function () {
  const form = document.getElementById("stripe-card-form");
  if (!form || !window.Stripe) return;
  const stripe = window.Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#stripe-card-element");
  const errorBox = document.getElementById("stripe-card-error");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = false; };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.setupUrl, { method: "POST", headers: { "X-CSRFToken": csrf } });
      const intent = await response.json();
      if (!response.ok) { showError(intent.detail || "The card could not be prepared."); return; }
      const result = await stripe.confirmCardSetup(intent.client_secret, { payment_method: { card } });
      if (result.error) { showError(result.error.message); return; }
      form.querySelector("input[name=setup_intent]").value = result.setupIntent.id;
      form.submit();
    } catch (err) {
      showError("The payment service cannot be reached. Try again in a minute.");
    } finally {
      button.disabled = false;
    }
  });
})();
