// The operator page: pick or drop a query (or click a gallery image), filter, see the ranked gallery.
"use strict";

const $ = (id) => document.getElementById(id);
let query = null;          // {file, url} for an upload, or {id} for a gallery image
let browseOffset = 0;

function token() { return localStorage.getItem("mcja_token") || ""; }

function setToken(value) {
  localStorage.setItem("mcja_token", value);
  // thumbnails are plain <img> requests: the server accepts the token as a same-site cookie for reading only
  document.cookie = `mcja_token=${encodeURIComponent(value)}; path=/; SameSite=Strict`;
}

async function api(path, options = {}) {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("This service needs an access token: enter it below.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(err) {
  $("error").textContent = err ? err.message : "";
  $("error").hidden = !err;
}

function thumb(id, size = 256) { return `/gallery/${id}/image?size=${size}`; }

function labels(item) {
  const parts = [];
  if (item.pid !== undefined && item.pid !== null) parts.push(`person ${item.pid}`);
  if (item.camera !== undefined && item.camera !== null) parts.push(`cam ${item.camera}`);
  if (item.modality !== undefined && item.modality !== null) parts.push(item.modality);  // "visible" / "infrared"
  return parts.join(" · ");
}

function setQuery(next) {
  if (query && query.url) URL.revokeObjectURL(query.url);
  query = next;
  const img = $("query-img");
  img.src = next.file ? (next.url = URL.createObjectURL(next.file)) : thumb(next.id, 512);
  img.hidden = false;
  $("drop-text").hidden = true;
  $("query-info").textContent = next.file ? next.file.name : `gallery image #${next.id}` +
    (next.item ? ` (${labels(next.item)})` : "");
  $("search").disabled = false;
}

async function search() {
  if (!query) return;
  const form = new FormData();
  if (query.file) form.append("images", query.file, query.file.name);
  else form.append("gallery_id", String(query.id));
  form.append("top_k", $("topk").value || "20");
  if ($("modality").value) form.append("modality", $("modality").value);
  if ($("camera").value.trim()) form.append("camera", $("camera").value.trim());
  if ($("rerank").checked) form.append("rerank", "true");
  showError(null);
  $("summary").textContent = "Searching…";
  try {
    const result = await api("/search", { method: "POST", body: form });
    renderResults(result);
  } catch (err) {
    $("summary").textContent = "";
    showError(err);
  }
}

function card(item, rank, extra) {
  const div = document.createElement("div");
  div.className = "card" + (item.correct === true ? " right" : item.correct === false ? " wrong" : "");
  div.dataset.id = item.id;
  const img = document.createElement("img");
  img.src = thumb(item.id);
  img.alt = `gallery image ${item.id}`;
  img.loading = "lazy";
  img.addEventListener("click", () => openViewer(item));
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.innerHTML = (rank ? `<b class="rank">#${rank}</b> ` : "") + (extra || "") +
    `<span class="labels"></span><span class="gid">gallery id ${item.id}</span>`;
  meta.querySelector(".labels").textContent = labels(item);
  const use = document.createElement("button");
  use.className = "use secondary";
  use.textContent = "Use as query";
  use.addEventListener("click", () => { setQuery({ id: item.id, item }); search(); });
  div.append(img, meta, use);
  return div;
}

function renderResults(result) {
  const q = result.queries[0];
  const grid = $("grid");
  grid.replaceChildren(...q.results.map((r) => card(r, r.rank, `<span class="score">${r.score.toFixed(3)}</span>`)));
  const known = q.results.filter((r) => r.correct !== undefined);
  const hits = known.filter((r) => r.correct).length;
  $("summary").textContent = `Top ${q.results.length} of ${result.gallery_images} gallery images · score: ` +
    `${result.score} · ${(result.seconds * 1000).toFixed(0)} ms` +
    (known.length ? ` · ${hits} of ${known.length} show person ${q.pid} (green)` : "");
  grid.className = "ranked";
  $("more").hidden = true;
}

async function browse(append = false) {
  showError(null);
  try {
    if (!append) browseOffset = 0;
    const page = await api(`/gallery?offset=${browseOffset}&limit=60`);
    const cards = page.items.map((item) => card(item, null, ""));
    if (append) $("grid").append(...cards); else $("grid").replaceChildren(...cards);
    browseOffset += page.items.length;
    $("grid").className = "browse";
    $("summary").textContent = `Gallery: ${page.total} images (showing ${browseOffset}); click one to view it, ` +
      "or 'Use as query'.";
    $("more").hidden = browseOffset >= page.total;
  } catch (err) { showError(err); }
}

let viewed = null;
function openViewer(item) {
  viewed = item;
  $("viewer-img").src = thumb(item.id, 768);
  $("viewer-caption").textContent = [item.rank ? `rank ${item.rank}` : "", item.score !== undefined ?
    `score ${item.score.toFixed(4)}` : "", labels(item), `gallery id ${item.id}`, item.path || ""].filter(Boolean).join(" · ");
  $("viewer").hidden = false;
}

async function loadStatus() {
  try {
    const h = await api("/health");
    $("status").textContent = `${h.index.images} gallery images · ${h.model.feature_dim}-d features · ${h.device}`;
  } catch (err) { $("status").textContent = "not connected"; showError(err); }
}

function wire() {
  $("file").addEventListener("change", () => {
    if ($("file").files[0]) { setQuery({ file: $("file").files[0] }); search(); }
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) { setQuery({ file }); search(); }
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") $("file").click(); });
  $("options").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("browse").addEventListener("click", () => browse(false));
  $("more").addEventListener("click", () => browse(true));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token").value.trim());
    $("token-form").hidden = true;
    loadStatus();
  });
  $("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });
  $("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) $("viewer").hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("viewer").hidden = true; });
  $("viewer-query").addEventListener("click", () => {
    $("viewer").hidden = true;
    setQuery({ id: viewed.id, item: viewed });
    search();
  });
}

wire();
if (token()) setToken(token());
loadStatus();
