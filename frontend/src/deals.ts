// Deal pages: Stripe's payment element on the payment page, and the print button of the printable
// contract and manifest.
//
// The payment page renders <form data-stripe-pay data-publishable-key data-client-secret
// data-return-url> only when Stripe is configured and a PaymentIntent exists for what is due;
// Stripe.js itself is loaded from js.stripe.com by that page. Confirming redirects to the deal's page
// (Stripe adds ?payment_intent=…&redirect_status=…); the deal becomes paid when Stripe's webhook
// reaches the platform, never because the browser says so.

interface StripeError {
  message?: string;
}
interface StripeElement {
  mount(selector: string | HTMLElement): void;
  on(event: "ready" | "change", handler: (event: { error?: StripeError }) => void): void;
}
interface StripeElements {
  create(kind: "payment", options?: Record<string, unknown>): StripeElement;
}
interface StripeClient {
  elements(options: { clientSecret: string; locale?: string }): StripeElements;
  confirmPayment(options: {
    elements: StripeElements;
    confirmParams: { return_url: string };
  }): Promise<{ error?: StripeError }>;
}

declare global {
  interface Window {
    Stripe?: (key: string, options?: { locale?: string }) => StripeClient;
  }
}

function showError(form: HTMLFormElement, text: string): void {
  const list = form.querySelector<HTMLUListElement>("[data-stripe-error]");
  if (!list) return;
  list.replaceChildren();
  if (!text) {
    list.hidden = true;
    return;
  }
  const item = document.createElement("li");
  item.textContent = text;
  list.append(item);
  list.hidden = false;
}

export function stripePayInit(form: HTMLFormElement): void {
  const { publishableKey, clientSecret, returnUrl } = form.dataset;
  const status = form.querySelector<HTMLElement>("[data-stripe-status]");
  const button = form.querySelector<HTMLButtonElement>("[data-stripe-submit]");
  const container = form.querySelector<HTMLElement>("#payment-element");
  if (!publishableKey || !clientSecret || !returnUrl || !container || !button) return;
  if (typeof window.Stripe !== "function") {
    if (status) status.textContent = form.dataset.labelError ?? "";
    return;
  }
  const locale = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
  const stripe = window.Stripe(publishableKey, { locale });
  const elements = stripe.elements({ clientSecret, locale });
  const element = elements.create("payment");
  element.on("ready", () => {
    status?.remove();
    button.disabled = false;
  });
  element.on("change", (event) => showError(form, event.error?.message ?? ""));
  element.mount(container);

  const label = button.textContent ?? "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    button.textContent = form.dataset.labelPaying ?? label;
    showError(form, "");
    void stripe.confirmPayment({ elements, confirmParams: { return_url: returnUrl } }).then((result) => {
      // Only reached when the payment could not be confirmed (otherwise the browser is redirected).
      showError(form, result.error?.message ?? form.dataset.labelError ?? "");
      button.disabled = false;
      button.textContent = label;
    });
  });
}

export function dealsStart(): void {
  document.querySelectorAll<HTMLFormElement>("form[data-stripe-pay]").forEach(stripePayInit);
  document.querySelectorAll<HTMLButtonElement>("button[data-print]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  });
}
