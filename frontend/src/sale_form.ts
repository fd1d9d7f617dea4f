// The seller's sale form: only the fieldsets of the chosen trade mode are shown
// (<fieldset data-modes="auction tender">). Without JavaScript every fieldset shows, and the
// server ignores the fields the chosen mode does not use.

export function saleFormInit(form: HTMLFormElement): void {
  const radios = Array.from(form.querySelectorAll<HTMLInputElement>('input[name="mode"]'));
  const sets = Array.from(form.querySelectorAll<HTMLFieldSetElement>("fieldset[data-modes]"));
  const update = (): void => {
    const mode = radios.find((r) => r.checked)?.value ?? "";
    for (const set of sets) {
      const modes = (set.dataset.modes ?? "").split(/\s+/);
      const shown = modes.includes(mode);
      set.hidden = !shown;
      set.disabled = !shown;
    }
  };
  radios.forEach((radio) => radio.addEventListener("change", update));
  update();
}

export function saleFormsStart(): void {
  document.querySelectorAll<HTMLFormElement>("form[data-sale-form]").forEach(saleFormInit);
}
