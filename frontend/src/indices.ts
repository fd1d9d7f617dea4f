// The price index pages: the history chart of one index (ECharts, from JSON the server embeds with
// json_script) and the live, indicative values pushed over /ws/indices/ into the list page's strip,
// the index page's "盘中参考" figure and the home page's ticker.
//
// Every live number goes into space the server already reserved (fixed-width cells, a one-line
// strip), so nothing moves when values arrive. Ticks are "indicative": the official close replaces
// them at the cut-off. The socket reconnects with jittered backoff like notifications.ts.
//
// ECharts is the copy in static/frontend/build/echarts.min.js, loaded by the index page with
// defer after this bundle; the chart starts when it is there.

import type * as EChartsModule from "echarts";

import { backoffDelay } from "./notifications";
import { formatDecimal, formatQuantity } from "./trading";

type ECharts = typeof EChartsModule;
type Chart = ReturnType<ECharts["init"]>;

export interface Tick {
  type: string;
  series: string;
  name: string;
  day?: string;
  live: boolean;
  price: string | null;
  level: string | null;
  previous_close: string | null;
  previous_level: string | null;
  n: number;
  tonnes: string;
  label?: string;
}

interface ChartData {
  code: string;
  composite: boolean;
  days: string[];
  level: (string | null)[];
  price: string[];
  status: string[];
  labels: { level: string; price: string; title: string; status: Record<string, string> };
}

const PING_EVERY_MS = 25000;
const STRIP_MAX = 12;

// --- numbers ------------------------------------------------------------------------------------

/** Percentage change of ``value`` over ``previous`` as "+1.25%" / "-0.40%"; null if undefined. */
export function changePercent(value: string | null, previous: string | null): number | null {
  if (value === null || previous === null) return null;
  const now = Number(value);
  const before = Number(previous);
  if (!Number.isFinite(now) || !Number.isFinite(before) || before === 0) return null;
  return Math.round((now / before - 1) * 10000) / 100;
}

export function formatChange(change: number | null): string {
  if (change === null) return "—";
  const text = formatDecimal(change.toFixed(2), 2);
  return change > 0 ? `+${text}%` : `${text}%`;
}

/** The CSS class of a change: up is red and down is green, as Chinese markets print them. */
export function moveClass(change: number | null): string {
  if (change === null || change === 0) return "is-flat";
  return change > 0 ? "is-up" : "is-down";
}

function setChange(element: Element | null, change: number | null): void {
  if (!element) return;
  element.textContent = formatChange(change);
  element.classList.remove("is-up", "is-down", "is-flat");
  element.classList.add(moveClass(change));
}

/** What a tick shows: its level when the series has a base, else its price. */
function tickFigure(tick: Tick): { text: string; change: number | null } {
  if (tick.level !== null) {
    return { text: formatDecimal(tick.level, 2), change: changePercent(tick.level, tick.previous_level) };
  }
  if (tick.price !== null) {
    return { text: `¥${formatDecimal(tick.price, 2)}`, change: changePercent(tick.price, tick.previous_close) };
  }
  return { text: "—", change: null };
}

function displayName(tick: Tick): string {
  const known = document.querySelector<HTMLElement>(`[data-series="${CSS.escape(tick.series)}"][data-name]`);
  return known?.dataset.name || tick.name;
}

// --- the live values ----------------------------------------------------------------------------

export function tickApply(root: HTMLElement, tick: Tick): void {
  const figure = tickFigure(tick);
  const liveLabel = root.dataset.labelLive ?? "indicative";
  const closeLabel = root.dataset.labelClose ?? "";

  // The home ticker (and any other item of the series inside this root).
  root.querySelectorAll<HTMLElement>(`.ticker-item[data-series="${CSS.escape(tick.series)}"]`).forEach((item) => {
    if (tick.level === null) return; // the ticker shows levels only
    const level = item.querySelector("[data-level]");
    if (level) level.textContent = figure.text;
    setChange(item.querySelector("[data-change]"), figure.change);
    const when = item.querySelector("[data-when]");
    if (when) when.textContent = tick.live ? liveLabel : closeLabel;
    item.classList.toggle("is-live", tick.live);
  });

  // The index page's indicative figure.
  if (root.dataset.seriesLive && root.dataset.seriesLive === tick.series) {
    const level = root.querySelector("[data-live-level]");
    if (level) level.textContent = figure.text;
    setChange(root.querySelector("[data-live-change]"), figure.change);
    const meta = root.querySelector("[data-live-meta]");
    if (meta) {
      const counts = `${tick.n} · ${formatQuantity(tick.tonnes)} t`;
      meta.textContent = `${tick.live ? liveLabel : closeLabel} · ${counts}`;
    }
  }

  // The list page's strip: the newest tick first, a fixed number of fixed-size items.
  const strip = root.querySelector<HTMLOListElement>("[data-live-ticks]");
  if (strip) {
    strip.querySelector("[data-live-empty]")?.remove();
    strip.querySelector(`li[data-series="${CSS.escape(tick.series)}"]`)?.remove();
    const item = document.createElement("li");
    item.className = `live-tick${tick.live ? " is-live" : ""}`;
    item.dataset.series = tick.series;
    const link = document.createElement("a");
    link.href = `/indices/${encodeURIComponent(tick.series)}/`;
    const name = document.createElement("span");
    name.className = "live-tick-name";
    name.textContent = displayName(tick);
    const value = document.createElement("span");
    value.className = "live-tick-value";
    value.textContent = figure.text;
    const change = document.createElement("span");
    change.className = "index-chg";
    setChange(change, figure.change);
    const label = document.createElement("span");
    label.className = "live-tick-label";
    label.textContent = tick.live ? liveLabel : closeLabel;
    link.append(name, value, change, label);
    item.append(link);
    strip.prepend(item);
    while (strip.children.length > STRIP_MAX) strip.lastElementChild?.remove();
  }
}

export function liveConnect(root: HTMLElement): void {
  const path = root.dataset.socket;
  if (!path || typeof WebSocket === "undefined") return;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  let attempt = 0;

  const open = (): void => {
    const socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    let ping: number | undefined;
    socket.addEventListener("open", () => {
      attempt = 0;
      ping = window.setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event: MessageEvent) => {
      let data: Tick;
      try {
        data = JSON.parse(String(event.data)) as Tick;
      } catch {
        return;
      }
      if (data.type === "tick" && typeof data.series === "string") tickApply(root, data);
    });
    socket.addEventListener("close", () => {
      window.clearInterval(ping);
      window.setTimeout(open, backoffDelay(attempt++));
    });
  };
  open();
}

// --- the chart ----------------------------------------------------------------------------------

function readJson<T>(id: string): T | null {
  const script = document.getElementById(id);
  if (!script?.textContent) return null;
  try {
    return JSON.parse(script.textContent) as T;
  } catch {
    return null;
  }
}

function numbers(values: (string | null)[]): (number | null)[] {
  return values.map((v) => (v === null ? null : Number(v)));
}

export function chartOption(data: ChartData, reducedMotion = false): EChartsModule.EChartsCoreOption {
  const levelName = data.labels.level;
  const priceName = data.labels.price;
  const hasLevel = data.level.some((v) => v !== null);
  const showPrice = !data.composite && data.price.length > 0;
  const start = data.days.length > 260 ? Math.round((1 - 260 / data.days.length) * 100) : 0;
  const series: Record<string, unknown>[] = [];
  if (hasLevel) {
    series.push({
      name: levelName, type: "line", yAxisIndex: 0, data: numbers(data.level), showSymbol: false,
      lineStyle: { width: 2, color: "#0b5a3c" }, itemStyle: { color: "#0b5a3c" },
    });
  }
  if (showPrice) {
    series.push({
      name: priceName, type: "line", yAxisIndex: hasLevel ? 1 : 0, data: numbers(data.price), showSymbol: false,
      lineStyle: { width: 1.5, type: "dashed", color: "#124a7c" }, itemStyle: { color: "#124a7c" },
    });
  }
  const yAxis: Record<string, unknown>[] = [];
  if (hasLevel) yAxis.push({ type: "value", name: levelName, scale: true, splitLine: { lineStyle: { color: "#e3e8ec" } } });
  if (showPrice) {
    yAxis.push({
      type: "value", name: priceName, scale: true, position: hasLevel ? "right" : "left",
      splitLine: { show: !hasLevel, lineStyle: { color: "#e3e8ec" } },
      axisLabel: { formatter: (v: number) => formatDecimal(String(v), 0) },
    });
  }
  return {
    animation: !reducedMotion,
    textStyle: { fontFamily: "inherit" },
    grid: { left: 56, right: showPrice && hasLevel ? 72 : 24, top: 40, bottom: 64 },
    legend: { show: false, selected: {} },
    tooltip: {
      trigger: "axis",
      formatter: (params: unknown) => {
        const rows = params as { dataIndex: number; seriesName: string; value: number | null; marker: string }[];
        if (!rows.length) return "";
        const i = rows[0].dataIndex;
        const status = data.labels.status[data.status[i]] ?? data.status[i];
        const lines = rows.map((r) => {
          const value = r.value === null ? "—" : formatDecimal(String(r.value), 2);
          return `${r.marker}${r.seriesName}: <b>${value}</b>`;
        });
        return [`${data.days[i]} · ${status}`, ...lines].join("<br>");
      },
    },
    xAxis: { type: "category", data: data.days, boundaryGap: false },
    yAxis,
    dataZoom: [
      { type: "inside", start, end: 100 },
      { type: "slider", start, end: 100, height: 22, bottom: 12 },
    ],
    series,
  } as EChartsModule.EChartsCoreOption;
}

function whenEcharts(run: (echarts: ECharts) => void): void {
  const find = (): ECharts | undefined => (window as unknown as { echarts?: ECharts }).echarts;
  const found = find();
  if (found) {
    run(found);
    return;
  }
  // This bundle runs before the deferred echarts.min.js that follows it: wait for the page to load.
  window.addEventListener("load", () => {
    const late = find();
    if (late) run(late);
  }, { once: true });
}

export function chartInit(element: HTMLElement): void {
  const data = readJson<ChartData>(element.dataset.indexChart ?? "");
  if (!data || !data.days.length) return;
  whenEcharts((echarts) => {
    const reduced = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;
    // SVG prints sharp at any size.
    const chart: Chart = echarts.init(element, undefined, { renderer: "svg" });
    chart.setOption(chartOption(data, reduced));
    new ResizeObserver(() => chart.resize()).observe(element);
    const print = window.matchMedia?.("print");
    print?.addEventListener("change", () => chart.resize());
    window.addEventListener("beforeprint", () => chart.resize({ width: element.clientWidth || 680 }));
    window.addEventListener("afterprint", () => chart.resize());
    document.querySelectorAll<HTMLInputElement>("input[data-chart-toggle]").forEach((box) => {
      box.addEventListener("change", () => {
        const name = box.dataset.chartToggle === "price" ? data.labels.price : data.labels.level;
        chart.dispatchAction({ type: box.checked ? "legendSelect" : "legendUnSelect", name });
      });
    });
  });
}

export function indicesStart(): void {
  document.querySelectorAll<HTMLElement>("[data-index-chart]").forEach(chartInit);
  document.querySelectorAll<HTMLElement>("[data-index-live]").forEach(liveConnect);
}
