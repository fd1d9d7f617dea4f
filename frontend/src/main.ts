// Entry point of the browser bundle (built by build.mjs into static/frontend/build/app.js).
import htmx from "htmx.org";

import { countdownsStart, formatCountdown, serverNow } from "./countdown";
import { csrfToken } from "./csrf";
import { dealsStart } from "./deals";
import { indicesStart } from "./indices";
import { notificationsConnect } from "./notifications";
import { regionPickerInit } from "./regions";
import { saleFormsStart } from "./sale_form";
import { statisticsStart } from "./statistics";
import { tradingStart } from "./trading";
import "./upload";

declare global {
  interface Window {
    htmx: typeof htmx;
    market: { formatCountdown: typeof formatCountdown; serverNow: typeof serverNow };
  }
}

window.htmx = htmx;
window.market = { formatCountdown, serverNow };

// Indicator styles live in market.css, so htmx injects no inline <style>.
htmx.config.includeIndicatorStyles = false;
htmx.config.selfRequestsOnly = true;
// The Content Security Policy allows no eval and no inline script (market/core/security.py): htmx
// evaluates nothing (no hx-on, js: values or trigger filters) and runs no script found in a swap.
htmx.config.allowEval = false;
htmx.config.allowScriptTags = false;

// Every htmx request that changes something carries Django's CSRF token.
document.body.addEventListener("htmx:configRequest", (event: Event) => {
  const detail = (event as CustomEvent<{ verb: string; headers: Record<string, string> }>).detail;
  if (detail.verb !== "get") detail.headers["X-CSRFToken"] = csrfToken();
});

function start(): void {
  const toasts = document.getElementById("toasts");
  if (toasts && document.body.dataset.signedIn === "true") notificationsConnect(toasts);

  document.querySelectorAll<HTMLInputElement>("input[data-region-picker]").forEach((input) => {
    void regionPickerInit(input);
  });

  // The acting-organisation switcher submits on change; its button stays for keyboards and no-JS.
  document.querySelectorAll<HTMLSelectElement>("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form?.requestSubmit());
  });

  countdownsStart();
  tradingStart();
  saleFormsStart();
  dealsStart();
  indicesStart();
  statisticsStart();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
