// asset-catalog web UI: progressive enhancement only; every page works without it.
// - drag-and-drop (and file picker) upload on the browse page, with progress;
// - "Copy" buttons for hashes.
"use strict";

function uploadOne(form, file, log) {
  return new Promise((resolve) => {
    const item = document.createElement("li");
    item.textContent = `${file.name}: starting…`;
    log.appendChild(item);
    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/ui/upload");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) item.textContent = `${file.name}: ${Math.floor((100 * e.loaded) / e.total)} %`;
    };
    xhr.onload = () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        item.textContent = `${file.name}: ${xhr.status === 201 ? "uploaded" : "already in the catalog"}`;
        resolve(true);
      } else {
        item.textContent = `${file.name}: failed — ${answer.message || xhr.statusText || "error " + xhr.status}`;
        item.className = "failed";
        resolve(false);
      }
    };
    xhr.onerror = () => {
      item.textContent = `${file.name}: failed — the connection broke; try again`;
      item.className = "failed";
      resolve(false);
    };
    xhr.send(body);
  });
}

async function uploadAll(form, files) {
  const log = form.querySelector("#upload-log");
  log.replaceChildren();
  let ok = true;
  for (const file of files) ok = (await uploadOne(form, file, log)) && ok;
  if (ok) window.location.reload();
}

function setUpDrop(form) {
  form.classList.add("scripted");
  const input = form.querySelector("input[type=file]");
  input.multiple = true;
  input.addEventListener("change", () => { if (input.files.length) uploadAll(form, [...input.files]); });
  for (const type of ["dragenter", "dragover"]) {
    form.addEventListener(type, (e) => { e.preventDefault(); form.classList.add("over"); });
  }
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("over");
    const files = e.dataTransfer ? [...e.dataTransfer.files] : [];
    if (files.length) uploadAll(form, files);
  });
}

function setUpCopy(button) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = document.getElementById("drop");
  if (drop) setUpDrop(drop);
  document.querySelectorAll("button[data-copy]").forEach(setUpCopy);
});
