// asset-catalog web UI: progressive enhancement only; every page works without it.
// - drag-and-drop (and file picker) upload on the browse page, with progress:
//   a file up to the server's threshold (the drop zone's data-resumable-above)
//   in one form post to /ui/upload; a larger one resumably over tus to
//   /ui/uploads, after hashing it (the server wants the SHA-256 up front).
//   The tus client and the SHA-256 code (static/vendor/) load only then.
// - "Copy" buttons for hashes.
"use strict";

function say(item, text, failed) {
  item.textContent = text;
  if (failed) item.className = "failed";
}

function percent(done, total) {
  return total ? Math.floor((100 * done) / total) : 100;
}

// One file in one multipart post.
function postOne(form, file, item) {
  return new Promise((resolve) => {
    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/ui/upload");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) say(item, `${file.name}: ${percent(e.loaded, e.total)} %`);
    };
    xhr.onload = () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        say(item, `${file.name}: ${xhr.status === 201 ? "uploaded" : "already in the catalog"}`);
        resolve(true);
      } else {
        say(item, `${file.name}: failed — ${answer.message || xhr.statusText || "error " + xhr.status}`, true);
        resolve(false);
      }
    };
    xhr.onerror = () => {
      say(item, `${file.name}: failed — the connection broke; try again`, true);
      resolve(false);
    };
    xhr.send(body);
  });
}

// tus-js-client (a classic script defining window.tus), loaded once, on demand.
let tusLoading = null;
function loadTus(src) {
  if (!tusLoading) {
    tusLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.tus);
      script.onerror = () => { tusLoading = null; reject(new Error("the upload library did not load")); };
      document.head.appendChild(script);
    });
  }
  return tusLoading;
}

const HASH_CHUNK = 4 << 20;
// Web Crypto hashes a whole buffer at once: used up to this size, and only
// where it exists (secure contexts: HTTPS or localhost, not plain HTTP).
const SUBTLE_MAX = 256 << 20;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The file's SHA-256 (hex): native where it fits, else incrementally with
// @noble/hashes, a slice at a time, so any size fits in memory.
async function sha256Of(form, file, progress) {
  const subtle = window.crypto && window.crypto.subtle;
  if (subtle && file.size <= SUBTLE_MAX) {
    progress(0);
    return hex(await subtle.digest("SHA-256", await file.arrayBuffer()));
  }
  const { sha256 } = await import(form.dataset.sha256Module);
  const hash = sha256.create();
  for (let at = 0; at < file.size; at += HASH_CHUNK) {
    const slice = await file.slice(at, at + HASH_CHUNK).arrayBuffer();
    hash.update(new Uint8Array(slice));
    progress(at + slice.byteLength);
  }
  return hex(hash.digest());
}

function tusMessage(err) {
  const res = err && err.originalResponse;
  if (res) {
    try { return JSON.parse(res.getBody()).message || `error ${res.getStatus()}`; } catch (_) { return `error ${res.getStatus()}`; }
  }
  return "the connection broke and did not come back; drop the file again to resume";
}

// One file over tus: resumed from this browser's earlier attempt at the same
// file when there is one (the hash is kept with it), else hashed first.
async function tusOne(form, file, item) {
  const tus = await loadTus(form.dataset.tusScript);
  return new Promise((resolve) => {
    const upload = new tus.Upload(file, {
      endpoint: new URL("/ui/uploads", window.location.href).href,
      headers: { "X-CSRF-Token": form.dataset.csrf },
      metadata: { filename: file.name, filetype: file.type },
      // A cut connection: ask the server where it stands and go on from there.
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onAfterResponse(req, res) {
        // Content already stored is answered at creation: nothing to send.
        if (req.getMethod() === "POST" && res.getHeader("Asset-Catalog-Present") === "true") {
          upload.options.storeFingerprintForResuming = false;
          upload.abort();
          say(item, `${file.name}: already in the catalog`);
          resolve(true);
        }
      },
      onProgress(sent, total) { say(item, `${file.name}: ${percent(sent, total)} % uploaded`); },
      onSuccess() { say(item, `${file.name}: uploaded`); resolve(true); },
      onError(err) { say(item, `${file.name}: failed — ${tusMessage(err)}`, true); resolve(false); },
    });
    begin(form, file, item, upload).catch((err) => {
      say(item, `${file.name}: failed — ${err.message}`, true);
      resolve(false);
    });
  });
}

async function begin(form, file, item, upload) {
  const previous = (await upload.findPreviousUploads()).find((p) => p.metadata && p.metadata.sha256);
  if (previous) {
    upload.options.metadata = previous.metadata;
    upload.resumeFromPreviousUpload(previous);
    say(item, `${file.name}: resuming…`);
  } else {
    upload.options.metadata.sha256 = await sha256Of(form, file, (done) => {
      say(item, `${file.name}: hashing, ${percent(done, file.size)} %`);
    });
  }
  upload.start();
}

async function uploadAll(form, files) {
  const log = form.querySelector("#upload-log");
  log.replaceChildren();
  const above = Number(form.dataset.resumableAbove);
  let ok = true;
  for (const file of files) {
    const item = document.createElement("li");
    item.textContent = `${file.name}: starting…`;
    log.appendChild(item);
    const sent = file.size > above ? tusOne(form, file, item) : postOne(form, file, item);
    ok = (await sent.catch((err) => { say(item, `${file.name}: failed — ${err.message}`, true); return false; })) && ok;
  }
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
