// Countdowns measured against the server's clock, never the visitor's: the page states the server
// time in <meta name="server-time" content="<unix seconds>">, we keep the offset, and a deadline is
// compared with "now on the server".
//
// Markup: <time data-countdown data-deadline="1767225600" datetime="...">...</time>
// (data-deadline: unix seconds or an ISO 8601 string; data-expired-text: shown at zero).

let offsetMs = 0;

export function serverClockSync(serverNowMs: number, clientNowMs: number = Date.now()): void {
  offsetMs = serverNowMs - clientNowMs;
}

export function serverNow(): number {
  return Date.now() + offsetMs;
}

export function parseInstant(value: string): number {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  return Date.parse(trimmed);
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** "03:04:05", or "2d 03:04:05" with the day unit given by the page (e.g. "天"). */
export function formatCountdown(remainingMs: number, dayUnit = "d"): string {
  const total = Math.max(0, Math.floor(remainingMs / 1000));
  const days = Math.floor(total / 86400);
  const clock = `${pad(Math.floor((total % 86400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return days > 0 ? `${days}${dayUnit} ${clock}` : clock;
}

function tick(root: ParentNode): void {
  const now = serverNow();
  root.querySelectorAll<HTMLElement>("[data-countdown]").forEach((el) => {
    const deadline = parseInstant(el.dataset.deadline ?? "");
    if (Number.isNaN(deadline)) return;
    const left = deadline - now;
    el.textContent = left <= 0 && el.dataset.expiredText ? el.dataset.expiredText : formatCountdown(left, el.dataset.dayUnit);
    if (left <= 0) el.classList.add("is-expired");
  });
}

export function countdownsStart(root: ParentNode = document): void {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="server-time"]');
  if (meta?.content) serverClockSync(parseInstant(meta.content));
  if (!root.querySelector("[data-countdown]")) return;
  tick(root);
  window.setInterval(() => tick(document), 1000);
}
