// The live trading panel of a lot's page (<section data-trading>, rendered by the server).
//
// A websocket to /ws/lots/{id}/ sends a snapshot on connect, then one message per change:
// {"type": "state", "event": "bid" | "extended" | "closed" | "offer" | "state", "state": {..., "sequence": N}}.
// Sequence numbers are consecutive: a gap means a message was lost, so we ask again
// ({"type": "snapshot"} on the socket, or GET /api/v1/lots/{id}/state/ if the socket is down).
// Public numbers (price, minimum next bid, counts, leader, end time) are updated in place; what
// only this viewer may see (label, rank, maximum, deposit) and the bid history come from the
// page's own fragment (data-live-url), fetched after a change only by participants (bidders, the
// seller, depositors); others extend the history from the message's public bid rows. The countdown uses the server's
// clock (server_time of each state). Reconnects with full-jitter backoff like notifications.ts.
//
// The bid form posts to the API with an Idempotency-Key, so a retried submit never bids twice and
// the page does not reload; without JavaScript it posts to the page view.

import { parseInstant, serverClockSync } from "./countdown";
import { csrfToken } from "./csrf";
import { backoffDelay } from "./notifications";

export interface SaleState {
  lot: number;
  sale: number;
  mode: string;
  status: string;
  sequence: number;
  server_time: string;
  closes_at: string;
  extended: boolean;
  current_price: string | null;
  minimum_next: string | null;
  reserve_set: boolean;
  reserve_met: boolean | null;
  buy_now_price: string | null;
  quantity_remaining: string | null;
  bid_count: number;
  bidder_count: number;
  leader: string | null;
  you?: { label: string | null; leading: boolean } | null;
}

/** A public bid row carried by a state message (auctions only; sealed tenders carry none). */
export interface BidRow {
  sequence: number;
  bidder: string;
  amount: string;
  kind: string;
  created_at: string;
}

interface LotMessage {
  type: string;
  event?: string;
  state?: SaleState | null;
  bids?: BidRow[];
}

const PING_EVERY_MS = 25000;
const LIVE_DELAY_MS = 150;
const LIVE_JITTER_MS = 600;

/** "2510.5" -> "2,510.50": grouping by thousands, exactly the given places, no float rounding. */
export function formatDecimal(value: string, places = 2): string {
  const negative = value.trim().startsWith("-");
  const [whole, fraction = ""] = value.trim().replace(/^[-+]/, "").split(".");
  const grouped = (whole || "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const digits = places > 0 ? `.${(fraction + "0".repeat(places)).slice(0, places)}` : "";
  return `${negative ? "-" : ""}${grouped}${digits}`;
}

/** "-3g" of Django's floatformat: up to 3 places, trailing zeros dropped. */
export function formatQuantity(value: string): string {
  const [whole, fraction = ""] = value.trim().split(".");
  const trimmed = fraction.slice(0, 3).replace(/0+$/, "");
  return formatDecimal(whole, 0) + (trimmed ? `.${trimmed}` : "");
}

/** An instant as "YYYY-MM-DD HH:MM:SS" in Beijing time, like the server's templates. */
export function formatShanghai(instantMs: number): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(instantMs));
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${get("second")}`;
}

/** Whether a message's sequence number follows the last one seen: "next", "stale" or "gap". */
export function sequenceCheck(last: number, incoming: number): "next" | "stale" | "gap" {
  if (incoming <= last) return "stale";
  return incoming === last + 1 ? "next" : "gap";
}

function fill(template: string | undefined, values: Record<string, string>): string {
  return (template ?? "").replace(/\{(\w+)\}/g, (_m, key: string) => values[key] ?? "");
}

function idempotencyKey(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class TradingPanel {
  private sequence: number;
  private readonly saleId: number;
  private readonly status: string;
  private socket: WebSocket | null = null;
  private attempt = 0;
  private liveTimer: number | undefined;
  private lastPrice: string | null = null;
  /** The sequence of the state that answered this viewer's last accepted bid. */
  private bidOkSequence = Number.MAX_SAFE_INTEGER;
  private wasExtended = false;
  private leader: string | null = null;

  constructor(private readonly root: HTMLElement) {
    this.sequence = Number(root.dataset.sequence ?? "0");
    this.saleId = Number(root.dataset.sale ?? "0");
    this.status = root.dataset.status ?? "";
    this.wasExtended = !root.querySelector<HTMLElement>("[data-extended]")?.hidden;
    const serverTime = root.dataset.serverTime;
    if (serverTime) serverClockSync(parseInstant(serverTime));
  }

  start(): void {
    this.connect();
    this.root.querySelectorAll<HTMLFormElement>("form[data-bid-form]").forEach((form) => this.bidFormInit(form));
  }

  // --- the socket ---------------------------------------------------------------------------

  private connect(): void {
    const path = this.root.dataset.socket;
    if (!path || typeof WebSocket === "undefined") return;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    this.socket = socket;
    let ping: number | undefined;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.statusShow("");
      ping = window.setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event: MessageEvent) => {
      let data: LotMessage;
      try {
        data = JSON.parse(String(event.data)) as LotMessage;
      } catch {
        return;
      }
      this.receive(data);
    });
    socket.addEventListener("close", (event: CloseEvent) => {
      window.clearInterval(ping);
      this.socket = null;
      if (event.code === 4404) return; // the lot is no longer visible
      this.statusShow(this.root.dataset.labelOffline ?? "");
      window.setTimeout(() => this.connect(), backoffDelay(this.attempt++));
    });
  }

  receive(data: LotMessage): void {
    if (!data.state) return;
    if (data.type === "snapshot") {
      const missed = data.state.sequence !== this.sequence; // changes we never saw: fetch all
      this.apply(data.state, "snapshot");
      this.sequence = data.state.sequence;
      if (missed) this.liveRefresh();
      else this.participantRefresh();
      return;
    }
    if (data.type !== "state") return;
    const check = sequenceCheck(this.sequence, data.state.sequence);
    if (check === "stale") return;
    if (check === "gap") {
      void this.resync();
      return;
    }
    this.sequence = data.state.sequence;
    this.apply(data.state, data.event ?? "state");
    if (data.bids && data.bids.length > 0) this.historyPrepend(data.bids);
    this.participantRefresh();
  }

  /** Only a participant (a bidder, the seller, a depositor) has a part of the page that depends on
   * who they are; everyone else's page is complete from the message itself, so a thousand
   * watchers cost the server nothing per bid beyond the one fan-out. */
  private participantRefresh(): void {
    if (this.root.dataset.participant === "true") this.liveRefresh();
  }

  /** Newest first, as the server renders it; rows already shown (by sequence) are skipped. */
  historyPrepend(rows: BidRow[]): void {
    const section = document.getElementById("bid-history");
    const table = section?.querySelector<HTMLTableElement>("table.history");
    const body = table?.tBodies[0];
    if (!section || !table || !body) return;
    const d = this.root.dataset;
    const kinds: Record<string, string | undefined> = { proxy: d.kindProxy, buy_now: d.kindBuyNow };
    for (const row of rows) {
      if (body.querySelector(`tr[data-sequence="${row.sequence}"]`)) continue;
      const tr = document.createElement("tr");
      tr.dataset.sequence = String(row.sequence);
      if (d.yourLabel && row.bidder === d.yourLabel) tr.classList.add("is-mine");
      const who = document.createElement("td");
      who.textContent = row.bidder;
      const kind = kinds[row.kind];
      if (kind) {
        const note = document.createElement("span");
        note.className = "muted";
        note.textContent = kind;
        who.append(" ", note);
      }
      const amount = document.createElement("td");
      amount.className = "num";
      amount.textContent = `¥${formatDecimal(row.amount)}`;
      const at = document.createElement("td");
      at.className = "num";
      at.textContent = formatShanghai(parseInstant(row.created_at)).slice(5); // MM-DD HH:MM:SS
      tr.append(who, amount, at);
      body.insertBefore(tr, body.firstChild);
    }
    while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
    table.hidden = false;
    const empty = section.querySelector<HTMLElement>("[data-history-empty]");
    if (empty) empty.hidden = true;
  }

  /** A message was missed: ask for the whole state again. */
  async resync(): Promise<void> {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "snapshot" }));
      return;
    }
    const url = this.root.dataset.stateUrl;
    if (!url) return;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const state = (await response.json()) as SaleState;
    this.sequence = state.sequence;
    this.apply(state, "snapshot");
    this.liveRefresh(); // after a gap: the history may have missed rows, so ask for it whole
  }

  // --- applying a state ---------------------------------------------------------------------

  apply(state: SaleState, event: string): void {
    // Another sale (relisted), another mode or the end of this one: the server renders it anew.
    if (state.sale !== this.saleId || (state.status !== this.status && this.status === "active")) {
      window.location.reload();
      return;
    }
    serverClockSync(parseInstant(state.server_time));
    const d = this.root.dataset;
    const money = (name: string, value: string | null, empty = "—"): void => {
      this.root.querySelectorAll<HTMLElement>(`[data-field="${name}"]`).forEach((el) => {
        el.textContent = value !== null && value !== undefined ? `${el.dataset.moneyPrefix ?? ""}${formatDecimal(value)}` : empty;
      });
    };
    const text = (name: string, value: string): void => {
      this.root.querySelectorAll<HTMLElement>(`[data-field="${name}"]`).forEach((el) => {
        el.textContent = value;
      });
    };
    money("current_price", state.current_price, d.labelNoBids ?? "—");
    money("minimum_next", state.minimum_next, "");
    money("buy_now_price", state.buy_now_price, "");
    text("bid_count", String(state.bid_count));
    text("bidder_count", String(state.bidder_count));
    text("leader", state.leader ?? "—");
    if (state.quantity_remaining !== null) text("quantity_remaining", formatQuantity(state.quantity_remaining));

    const reserve = this.root.querySelector<HTMLElement>('[data-field="reserve_met"]');
    if (reserve && state.reserve_met !== null) {
      reserve.textContent = (state.reserve_met ? d.labelReserveMet : d.labelReserveNotMet) ?? "";
      reserve.classList.toggle("text-ok", state.reserve_met);
      reserve.classList.toggle("text-warn", !state.reserve_met);
    }

    const closes = parseInstant(state.closes_at);
    this.root.querySelectorAll<HTMLElement>("[data-countdown]").forEach((el) => {
      el.dataset.deadline = state.closes_at;
      el.setAttribute("datetime", state.closes_at);
    });
    this.root.querySelectorAll<HTMLElement>('[data-field="closes_at"]').forEach((el) => {
      el.textContent = formatShanghai(closes);
      el.setAttribute("datetime", state.closes_at);
    });

    const extended = this.root.querySelector<HTMLElement>("[data-extended]");
    if (extended) extended.hidden = !state.extended;
    if (state.extended && (event === "extended" || !this.wasExtended)) {
      this.announce(fill(d.labelExtended, { time: formatShanghai(closes) }));
    }
    this.wasExtended = state.extended;

    const buyNow = this.root.querySelector<HTMLElement>("[data-buy-now]");
    if (buyNow) buyNow.hidden = !state.buy_now_price;

    const amount = this.root.querySelector<HTMLInputElement>('form[data-bid-form] input[name="amount"]');
    if (amount && state.minimum_next) {
      amount.min = state.minimum_next;
      amount.placeholder = state.minimum_next;
    }

    if (state.you?.label) d.yourLabel = state.you.label;
    this.leader = state.leader;
    this.leadingShow(state.mode);

    if (state.mode === "auction" && state.current_price && state.current_price !== this.lastPrice && event === "bid") {
      this.announce(fill(d.labelNewPrice, { price: formatDecimal(state.current_price) }));
    }
    this.lastPrice = state.current_price;
  }

  /** "You lead" or "you were outbid", once this viewer has a label in the sale. */
  private leadingShow(mode: string): void {
    const d = this.root.dataset;
    const leading = this.root.querySelector<HTMLElement>("[data-leading]");
    if (!leading || !d.yourLabel || mode !== "auction") return;
    leading.hidden = false;
    const ahead = this.leader === d.yourLabel;
    leading.textContent = (ahead ? d.labelLeading : d.labelOutbid) ?? "";
    leading.classList.toggle("is-outbid", !ahead);
    if (!ahead && this.sequence > this.bidOkSequence) {
      // "Bid placed" no longer describes the bidder's standing once a later rival bid passed it
      // (a proxy that answered within the bid's own change leaves it: the bid was placed).
      for (const status of this.root.querySelectorAll<HTMLElement>("[data-bid-status]")) {
        if (status.textContent === d.labelBidOk) status.textContent = "";
      }
    }
  }

  // --- the viewer's own part and the history ------------------------------------------------

  /** Refetch the viewer-dependent fragment soon (coalescing bursts; jittered so that a thousand
   * watchers do not ask in the same millisecond). */
  liveRefresh(): void {
    window.clearTimeout(this.liveTimer);
    this.liveTimer = window.setTimeout(() => void this.liveFetch(), LIVE_DELAY_MS + Math.random() * LIVE_JITTER_MS);
  }

  private async liveFetch(): Promise<void> {
    const url = this.root.dataset.liveUrl;
    if (!url) return;
    let response: Response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch {
      return;
    }
    if (!response.ok) return;
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    for (const id of ["trading-you", "bid-history", "trading-offers"]) {
      const fresh = holder.querySelector(`#${id}`);
      const current = document.getElementById(id);
      if (fresh && current) current.replaceWith(fresh);
    }
  }

  // --- bidding without a page load ---------------------------------------------------------

  private bidFormInit(form: HTMLFormElement): void {
    const url = this.root.dataset.bidApi;
    if (!url) return;
    const error = form.querySelector<HTMLElement>("[data-bid-error]");
    const status = form.querySelector<HTMLElement>("[data-bid-status]");
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    let pendingKey: string | null = null;
    let pendingBody = "";

    form.addEventListener("submit", (event: SubmitEvent) => {
      event.preventDefault();
      const data = new FormData(form);
      const body: Record<string, string> = { amount: String(data.get("amount") ?? "").trim() };
      const maximum = String(data.get("maximum") ?? "").trim();
      if (maximum) body.maximum = maximum;
      const json = JSON.stringify(body);
      // The same submission retried after a network failure keeps its key; a new one gets a new key.
      if (pendingKey === null || json !== pendingBody) pendingKey = idempotencyKey();
      pendingBody = json;
      const key = pendingKey;
      if (error) {
        error.hidden = true;
        error.replaceChildren();
      }
      form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
      if (status) status.textContent = this.root.dataset.labelSending ?? "";
      if (button) button.disabled = true;

      void (async () => {
        try {
          const response = await fetch(url, {
            method: "POST",
            credentials: "same-origin",
            headers: {
              "Content-Type": "application/json",
              Accept: "application/json",
              "X-CSRFToken": csrfToken(),
              "Idempotency-Key": key,
            },
            body: json,
          });
          const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
          pendingKey = null;
          if (response.ok) {
            const state = answer as unknown as SaleState;
            if (status) status.textContent = (state.mode === "tender" ? this.root.dataset.labelTenderOk : this.root.dataset.labelBidOk) ?? "";
            this.bidOkSequence = state.sequence;
            form.reset();
            if (sequenceCheck(this.sequence, state.sequence) !== "stale") {
              // Our own bid's state may arrive here before the socket's message: apply it now and
              // let the socket's copy be ignored as stale.
              const gap = sequenceCheck(this.sequence, state.sequence) === "gap";
              this.sequence = state.sequence;
              this.apply(state, gap ? "snapshot" : "bid");
            } else if (state.you?.label) {
              // The socket's copy came first, without our label (it is public): a first bid only
              // learns the label here, so show our standing against the latest leader now.
              this.root.dataset.yourLabel = state.you.label;
              this.leadingShow(state.mode);
            }
            this.root.dataset.participant = "true"; // a bidder now: its standing is its own
            this.liveRefresh();
          } else {
            if (status) status.textContent = "";
            this.errorShow(form, error, answer);
          }
        } catch {
          if (status) status.textContent = "";
          this.errorShow(form, error, { message: this.root.dataset.labelFailed });
        } finally {
          if (button) button.disabled = false;
        }
      })();
    });
  }

  private errorShow(form: HTMLFormElement, box: HTMLElement | null, answer: Record<string, unknown>): void {
    const fields = (answer.fields ?? {}) as Record<string, { message?: string }[]>;
    const messages: string[] = [];
    for (const [name, errors] of Object.entries(fields)) {
      const input = form.querySelector<HTMLInputElement>(`[name="${name}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
      for (const e of errors) if (e.message) messages.push(e.message);
    }
    if (messages.length === 0) messages.push(String(answer.message ?? this.root.dataset.labelFailed ?? ""));
    if (!box) return;
    box.replaceChildren(
      ...messages.map((m) => {
        const li = document.createElement("li");
        li.textContent = m;
        return li;
      }),
    );
    box.hidden = false;
  }

  // --- messages ----------------------------------------------------------------------------

  private statusShow(message: string): void {
    const el = this.root.querySelector<HTMLElement>("[data-live-status]");
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  private announce(message: string): void {
    const el = this.root.querySelector<HTMLElement>("[data-live-status]");
    if (!el || !message) return;
    el.textContent = message;
    el.hidden = false;
    el.classList.add("is-news");
    window.setTimeout(() => {
      if (el.textContent === message) {
        el.classList.remove("is-news");
      }
    }, 4000);
  }
}

export function tradingStart(): void {
  document.querySelectorAll<HTMLElement>("[data-trading]").forEach((root) => new TradingPanel(root).start());
}
