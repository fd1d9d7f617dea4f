// Live notifications for a signed-in user: a websocket to /ws/notifications/ that reconnects with
// jittered exponential backoff, and a small toast region (role="status", aria-live="polite").
// Each message carries the user's unread count, shown on the bell in the header ([data-bell]).

interface NotifyMessage {
  type: string;
  title?: string;
  body?: string;
  url?: string;
  unread?: number | null;
}

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const PING_EVERY_MS = 25000;
const TOAST_MS = 10000;
const CLOSE_UNAUTHENTICATED = 4401;

/** Full jitter: a random wait between 0 and min(cap, base * 2^attempt). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempt, 16));
  return Math.max(250, Math.floor(random() * ceiling));
}

/** Only links inside this site are followed from a notification. */
function safeUrl(url: string | undefined): string | null {
  if (!url || !url.startsWith("/") || url.startsWith("//")) return null;
  return url;
}

export function toastShow(region: HTMLElement, message: NotifyMessage): void {
  const toast = document.createElement("div");
  toast.className = "toast";
  const title = document.createElement("p");
  title.className = "toast-title";
  title.textContent = message.title ?? "";
  toast.append(title);
  if (message.body) {
    const body = document.createElement("p");
    body.className = "toast-body";
    body.textContent = message.body;
    toast.append(body);
  }
  const url = safeUrl(message.url);
  if (url) {
    const link = document.createElement("a");
    link.href = url;
    link.textContent = region.dataset.labelOpen ?? "View";
    toast.append(link);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", region.dataset.labelClose ?? "Close");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(close);
  region.append(toast);
  window.setTimeout(() => toast.remove(), TOAST_MS);
}

/** The bell in the header: its count of unread notifications (hidden at zero) and its label. */
export function unreadShow(count: number, bell: HTMLElement | null = document.querySelector("[data-bell]")): void {
  if (!bell || !Number.isFinite(count)) return;
  const badge = bell.querySelector<HTMLElement>("[data-unread-count]");
  if (badge) {
    badge.textContent = String(count);
    badge.hidden = count <= 0;
  }
  const label = count > 0 ? (bell.dataset.labelUnread ?? "").replace("{n}", String(count)) : bell.dataset.label;
  if (label) bell.setAttribute("aria-label", label);
}

export function notificationsConnect(region: HTMLElement): void {
  const path = region.dataset.socket ?? "/ws/notifications/";
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  let attempt = 0;
  let ping: number | undefined;

  const open = (): void => {
    const socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      ping = window.setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event: MessageEvent) => {
      let data: NotifyMessage;
      try {
        data = JSON.parse(String(event.data)) as NotifyMessage;
      } catch {
        return;
      }
      if (data.type === "notify") toastShow(region, data);
      if ((data.type === "notify" || data.type === "unread") && typeof data.unread === "number") unreadShow(data.unread);
    });
    socket.addEventListener("close", (event: CloseEvent) => {
      window.clearInterval(ping);
      if (event.code === CLOSE_UNAUTHENTICATED) return; // signed out: do not retry
      window.setTimeout(open, backoffDelay(attempt++));
    });
  };
  open();
}
