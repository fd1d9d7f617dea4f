// Charts of the statistics pages (explorer, government dashboard), drawn with ECharts from data the
// page embeds with Django's json_script. Every figure is also in a table on the page, so without
// JavaScript (or before ECharts has loaded) nothing is missing.
//
// Markup: <div data-stat-chart="ID" hidden></div> plus <script type="application/json" id="ID">…</script>.
// The JSON's "kind" picks the chart:
//   volume   {labels, value[], tonnes[], trades[], names: {value, tonnes, trades}}
//            bars of value with lines of tonnes and trades, three value axes;
//   ranking  {labels, values[], urls[], name}  horizontal bars, largest on top; a click opens urls[i]
//            (the dashboard's drill-down into a category or a sub-region);
//   grouped  {labels, series: [{name, values[]}]}  grouped vertical bars (manifest tonnes out / in).
// ECharts is the page's own copy (static/frontend/build/echarts.min.js, loaded with defer after the
// bundle); nothing comes from a CDN.

interface ChartClick {
  dataIndex: number;
}

interface EChart {
  setOption(option: Record<string, unknown>): void;
  resize(): void;
  on(event: "click", handler: (params: ChartClick) => void): void;
}

interface ECharts {
  init(element: HTMLElement, theme?: string | null, options?: { renderer?: "svg" | "canvas" }): EChart;
}

declare global {
  interface Window {
    echarts?: ECharts;
  }
}

interface VolumeData {
  kind: "volume";
  labels: string[];
  value: number[];
  tonnes: number[];
  trades: number[];
  names: { value: string; tonnes: string; trades: string };
}

interface RankingData {
  kind: "ranking";
  labels: string[];
  values: number[];
  urls: string[];
  name: string;
}

interface GroupedData {
  kind: "grouped";
  labels: string[];
  series: { name: string; values: number[] }[];
}

type ChartData = VolumeData | RankingData | GroupedData;

const COLOURS = ["#0b5a3c", "#c27c0e", "#124a7c", "#8a3b8f", "#5a6670"];

function english(): boolean {
  return document.documentElement.lang.toLowerCase().startsWith("en");
}

function grouped(value: number, digits: number): string {
  return value.toLocaleString(english() ? "en-US" : "zh-CN", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

// Large numbers the way the page's readers count: 1.23亿 / 45.6万 in Chinese, 1.23 bn / 45.6 m in English.
export function shortNumber(value: number): string {
  const abs = Math.abs(value);
  if (english()) {
    if (abs >= 1e9) return `${grouped(value / 1e9, 2)} bn`;
    if (abs >= 1e6) return `${grouped(value / 1e6, 2)} m`;
    if (abs >= 1e4) return `${grouped(value / 1e3, 1)} k`;
    return grouped(value, abs >= 100 || Number.isInteger(value) ? 0 : 2);
  }
  if (abs >= 1e8) return `${grouped(value / 1e8, 2)}亿`;
  if (abs >= 1e4) return `${grouped(value / 1e4, 2)}万`;
  return grouped(value, abs >= 100 || Number.isInteger(value) ? 0 : 2);
}

function axis(name: string, position: "left" | "right", offset = 0): Record<string, unknown> {
  return {
    type: "value",
    name,
    position,
    offset,
    nameTextStyle: { color: "#5a6670" },
    axisLabel: { formatter: (v: number) => shortNumber(v) },
    splitLine: { show: position === "left" },
  };
}

function tooltipValue(value: unknown): string {
  return typeof value === "number" ? shortNumber(value) : String(value ?? "—");
}

function volumeOption(data: VolumeData): Record<string, unknown> {
  return {
    color: COLOURS,
    animation: false,
    tooltip: { trigger: "axis", valueFormatter: tooltipValue },
    legend: { top: 0 },
    grid: { left: 64, right: 120, top: 48, bottom: 56 },
    dataZoom: data.labels.length > 40 ? [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }] : [],
    xAxis: { type: "category", data: data.labels },
    yAxis: [axis(data.names.value, "left"), axis(data.names.tonnes, "right"), axis(data.names.trades, "right", 60)],
    series: [
      { name: data.names.value, type: "bar", data: data.value, yAxisIndex: 0, barMaxWidth: 28 },
      { name: data.names.tonnes, type: "line", data: data.tonnes, yAxisIndex: 1, symbolSize: 5 },
      { name: data.names.trades, type: "line", data: data.trades, yAxisIndex: 2, symbolSize: 5, lineStyle: { type: "dashed" } },
    ],
  };
}

function rankingOption(data: RankingData): Record<string, unknown> {
  // ECharts draws the first category at the bottom: reverse so the largest is on top.
  const labels = [...data.labels].reverse();
  const values = [...data.values].reverse();
  return {
    color: COLOURS,
    animation: false,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: tooltipValue },
    grid: { left: 8, right: 56, top: 8, bottom: 24, containLabel: true },
    xAxis: { type: "value", axisLabel: { formatter: (v: number) => shortNumber(v) } },
    yAxis: { type: "category", data: labels },
    series: [
      {
        name: data.name,
        type: "bar",
        data: values,
        barMaxWidth: 22,
        cursor: data.urls.length ? "pointer" : "default",
        label: { show: true, position: "right", formatter: (p: { value: number }) => shortNumber(p.value) },
      },
    ],
  };
}

function groupedOption(data: GroupedData): Record<string, unknown> {
  return {
    color: [COLOURS[1], COLOURS[2]],
    animation: false,
    tooltip: { trigger: "axis", valueFormatter: tooltipValue },
    legend: { top: 0 },
    grid: { left: 56, right: 16, top: 40, bottom: 32 },
    xAxis: { type: "category", data: data.labels },
    yAxis: { type: "value", axisLabel: { formatter: (v: number) => shortNumber(v) } },
    series: data.series.map((s) => ({ name: s.name, type: "bar", data: s.values, barMaxWidth: 16 })),
  };
}

function chartData(element: HTMLElement): ChartData | null {
  const source = document.getElementById(element.dataset.statChart ?? "");
  if (!source?.textContent) return null;
  try {
    return JSON.parse(source.textContent) as ChartData;
  } catch {
    return null;
  }
}

function draw(echarts: ECharts, element: HTMLElement): EChart | null {
  const data = chartData(element);
  if (!data) return null;
  element.hidden = false; // hidden until drawn, so a page without JavaScript shows no empty box
  const chart = echarts.init(element, null, { renderer: "svg" });
  if (data.kind === "volume") chart.setOption(volumeOption(data));
  else if (data.kind === "ranking") {
    chart.setOption(rankingOption(data));
    const urls = [...data.urls].reverse();
    chart.on("click", (params) => {
      const url = urls[params.dataIndex];
      if (url) window.location.assign(url);
    });
  } else if (data.kind === "grouped") chart.setOption(groupedOption(data));
  element.classList.add("is-drawn");
  return chart;
}

function drawAll(): void {
  const echarts = window.echarts;
  if (!echarts) return;
  const charts: EChart[] = [];
  document.querySelectorAll<HTMLElement>("[data-stat-chart]").forEach((element) => {
    const chart = draw(echarts, element);
    if (chart) charts.push(chart);
  });
  if (!charts.length) return;
  let pending = 0;
  const resize = (): void => {
    window.cancelAnimationFrame(pending);
    pending = window.requestAnimationFrame(() => charts.forEach((c) => c.resize()));
  };
  window.addEventListener("resize", resize);
  // Print at the paper's width, then back to the screen's.
  window.addEventListener("beforeprint", () => charts.forEach((c) => c.resize()));
  window.addEventListener("afterprint", () => charts.forEach((c) => c.resize()));
}

export function statisticsStart(): void {
  if (!document.querySelector("[data-stat-chart]")) return;
  // echarts.min.js is deferred after the bundle: it may not have run yet.
  if (window.echarts) drawAll();
  else window.addEventListener("load", drawAll, { once: true });
}
