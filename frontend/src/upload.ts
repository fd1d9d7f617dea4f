// Lot photos and documents with a progress bar per file. Each chosen file is posted on its own
// (multipart, one after the other) to the API with XMLHttpRequest, whose upload.onprogress feeds a
// <progress>; an error answer's message (fields.file[0].message, else message) shows beside the
// file. When every file is done the media list is reloaded from the page's partial.
// Without JavaScript the form posts all files to the page view instead.
//
// Markup: <div data-uploader data-upload-url="/api/v1/lots/7/media/" data-list-url="/lots/7/media/list/"
//              data-label-done="…" data-label-failed="…" data-label-waiting="…" data-label-choose="…">
//           <form …><select name="kind">…</select><input type="file" name="file" multiple>…</form>
//           <ul class="upload-list"></ul>
//         </div>
// Elements marked data-nojs-only (e.g. the lot form's "refresh specs" button) are hidden here.

import { csrfToken } from "./csrf";

interface ApiError {
  message?: string;
  fields?: Record<string, { code?: string; message?: string }[]>;
}

export function uploadErrorText(status: number, body: string, fallback: string): string {
  try {
    const data = JSON.parse(body) as ApiError;
    const fileError = data.fields?.file?.[0]?.message;
    if (fileError) return fileError;
    const anyField = Object.values(data.fields ?? {})[0]?.[0]?.message;
    if (anyField) return anyField;
    if (data.message) return data.message;
  } catch {
    // not JSON (a proxy's error page): fall through
  }
  return `${fallback} (HTTP ${status})`;
}

function uploadOne(url: string, file: File, kind: string, row: HTMLElement, labels: DOMStringMap): Promise<boolean> {
  const progress = row.querySelector("progress") as HTMLProgressElement;
  const status = row.querySelector(".upload-status") as HTMLElement;
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event: ProgressEvent) => {
      if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
    };
    const fail = (text: string): void => {
      row.classList.add("is-failed");
      status.textContent = text;
      resolve(false);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        progress.value = 100;
        row.classList.add("is-done");
        status.textContent = labels.labelDone ?? "OK";
        resolve(true);
      } else {
        fail(uploadErrorText(xhr.status, xhr.responseText, labels.labelFailed ?? "Upload failed"));
      }
    };
    xhr.onerror = () => fail(labels.labelFailed ?? "Upload failed");
    const data = new FormData();
    data.append("file", file);
    data.append("kind", kind);
    xhr.send(data);
  });
}

async function mediaReload(root: HTMLElement): Promise<void> {
  const listUrl = root.dataset.listUrl;
  const current = document.getElementById("lot-media");
  if (!listUrl || !current) return;
  const response = await fetch(listUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = holder.querySelector("#lot-media");
  if (fresh) current.replaceWith(fresh);
}

export function uploaderInit(root: HTMLElement): void {
  const form = root.querySelector("form");
  const input = form?.querySelector<HTMLInputElement>('input[type="file"]');
  const list = root.querySelector<HTMLUListElement>(".upload-list");
  const url = root.dataset.uploadUrl;
  if (!form || !input || !list || !url) return;

  form.addEventListener("submit", (event: SubmitEvent) => {
    event.preventDefault();
    const files = Array.from(input.files ?? []);
    if (files.length === 0) {
      input.setAttribute("aria-invalid", "true");
      list.replaceChildren();
      const row = document.createElement("li");
      row.className = "is-failed";
      const text = document.createElement("span");
      text.className = "upload-status";
      text.textContent = root.dataset.labelChoose ?? "";
      row.append(text);
      list.append(row);
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    const kind = form.querySelector<HTMLSelectElement>('[name="kind"]')?.value ?? "photo";
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (button) button.disabled = true;
    list.replaceChildren();
    const rows = files.map((file) => {
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      const progress = document.createElement("progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", file.name);
      const status = document.createElement("span");
      status.className = "upload-status";
      status.textContent = root.dataset.labelWaiting ?? "";
      row.append(name, progress, status);
      list.append(row);
      return row;
    });

    void (async () => {
      let uploaded = 0;
      for (let i = 0; i < files.length; i++) {
        rows[i].querySelector<HTMLElement>(".upload-status")!.textContent = "";
        if (await uploadOne(url, files[i], kind, rows[i], root.dataset)) uploaded++;
      }
      if (button) button.disabled = false;
      input.value = "";
      if (uploaded > 0) await mediaReload(root);
    })();
  });
}

function start(): void {
  document.querySelectorAll<HTMLElement>("[data-nojs-only]").forEach((el) => {
    el.hidden = true;
  });
  document.querySelectorAll<HTMLElement>("[data-uploader]").forEach(uploaderInit);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
