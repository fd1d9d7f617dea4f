// Region picker: turns the plain 6-digit county-code input into three selects
// (province -> city -> county) filled from GET /api/v1/regions/ (the provinces) and
// GET /api/v1/regions/?parent=<code> (a region's children), both plain JSON lists.
// Without JavaScript, or when the API cannot be reached, the text input stays and still works.
//
// Markup: <input name="region" data-region-picker data-region-api="/api/v1/regions/"
//          data-label-province="省份" data-label-city="城市" data-label-county="区县" data-label-choose="请选择">

interface Region {
  code: string;
  name: string;
  level: string;
}

type Level = "province" | "city" | "county";
const LEVELS: Level[] = ["province", "city", "county"];

async function regionsFetch(api: string, query: string): Promise<Region[]> {
  const response = await fetch(query ? `${api}?${query}` : api, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`regions ${response.status}`);
  const data: unknown = await response.json();
  const list = Array.isArray(data) ? data : ((data as { results?: unknown[] }).results ?? []);
  return list as Region[];
}

function optionsFill(select: HTMLSelectElement, items: Region[], placeholder: string, selected = ""): void {
  select.replaceChildren(new Option(placeholder, ""));
  for (const item of items) select.add(new Option(item.name, item.code, false, item.code === selected));
  select.disabled = items.length === 0;
}

export async function regionPickerInit(input: HTMLInputElement): Promise<void> {
  const api = input.dataset.regionApi ?? "/api/v1/regions/";
  const choose = input.dataset.labelChoose ?? "—";
  let provinces: Region[];
  try {
    provinces = (await regionsFetch(api, "")).filter((r) => r.level === "province");
  } catch {
    return; // keep the plain input
  }
  if (provinces.length === 0) return;

  const group = document.createElement("div");
  group.className = "region-picker";
  const selects = {} as Record<Level, HTMLSelectElement>;
  for (const level of LEVELS) {
    const wrap = document.createElement("div");
    wrap.className = "region-picker-level";
    const select = document.createElement("select");
    select.id = `${input.id}_${level}`;
    const describedBy = input.getAttribute("aria-describedby");
    if (describedBy) select.setAttribute("aria-describedby", describedBy);
    if (input.getAttribute("aria-invalid")) select.setAttribute("aria-invalid", "true");
    const label = document.createElement("label");
    label.htmlFor = select.id;
    label.textContent = input.dataset[`label${level[0].toUpperCase()}${level.slice(1)}`] ?? level;
    wrap.append(label, select);
    group.append(wrap);
    selects[level] = select;
  }

  const initial = /^\d{6}$/.test(input.value) ? input.value : "";
  const provinceCode = initial ? `${initial.slice(0, 2)}0000` : "";
  const cityCode = initial ? `${initial.slice(0, 4)}00` : "";

  const childrenLoad = async (parent: string, target: HTMLSelectElement, selected: string): Promise<Region[]> => {
    optionsFill(target, [], choose);
    if (!parent) return [];
    const items = await regionsFetch(api, `parent=${encodeURIComponent(parent)}`);
    optionsFill(target, items, choose, selected);
    return items;
  };

  // A province whose children are counties already (no city level) fills the county select directly.
  const provinceChosen = async (code: string, city = "", county = ""): Promise<void> => {
    input.value = "";
    optionsFill(selects.county, [], choose);
    const items = await childrenLoad(code, selects.city, city);
    if (items.length && items.every((r) => r.level === "county")) {
      optionsFill(selects.city, [], choose);
      optionsFill(selects.county, items, choose, county);
      if (county) input.value = county;
    } else if (city) {
      await cityChosen(city, county);
    }
  };
  const cityChosen = async (code: string, county = ""): Promise<void> => {
    input.value = "";
    await childrenLoad(code, selects.county, county);
    if (county) input.value = county;
  };

  optionsFill(selects.province, provinces, choose, provinceCode);
  selects.province.addEventListener("change", () => void provinceChosen(selects.province.value));
  selects.city.addEventListener("change", () => void cityChosen(selects.city.value));
  selects.county.addEventListener("change", () => {
    input.value = selects.county.value;
  });

  input.hidden = true;
  input.insertAdjacentElement("afterend", group);
  const ownLabel = document.querySelector<HTMLLabelElement>(`label[for="${input.id}"]`);
  if (ownLabel) ownLabel.htmlFor = selects.province.id;
  if (provinceCode) {
    try {
      await provinceChosen(provinceCode, cityCode, initial);
    } catch {
      input.value = initial;
    }
  }
}
