// lookalike web page: point at the garment. Over the query photo (an upload or an image URL) it draws the
// garments found in it (POST /api/garments; tap one to search just it) and a crop box the shopper drags, resizes
// or draws anew (mouse, pen and touch: pointer events) that searches its region when let go. The region travels
// with the search (query.region: x0, y0, x1, y1 in fractions of the photo) and in the address (urlstate.js).
// "Shop the look": one row of results per garment.

import { api } from "./api.js";
import { renderCard } from "./cards.js";

const $ = (selector) => document.querySelector(selector);
const KIND = { top: "Top", bottom: "Bottom", dress: "Dress", outerwear: "Outerwear", footwear: "Footwear", bag: "Bag", hat: "Hat" };
const MIN_PIXELS = 40; // the smallest crop side on the photo (the server refuses under 32 pixels)
const ROW = 6; // results per garment in "Shop the look"

let searchRegion = null; // (query) => a search of its own (app.js: remembered, so the region is in the address)
let pickProduct = null;
let shown = null; // the query whose photo is on screen
let box = [0, 0, 1, 1]; // the crop, in fractions
let found = { key: null, garments: null }; // the garments of the photo on screen
let drawn = null; // the photo whose garments the boxes show (a search of a region keeps them as they are)

/** The region of `query` as the API and the address write it ("x0,y0,x1,y1"), or null for none. */
export function regionText(region) {
  return region ? region.map((v) => String(Math.round(v * 1000) / 1000)).join(",") : null;
}

/** A region read back from an address ("x0,y0,x1,y1"), or null when it is not four fractions with an area. */
export function parseRegion(text) {
  const v = String(text || "").split(",").map(Number);
  if (v.length !== 4 || v.some((x) => !Number.isFinite(x) || x < 0 || x > 1) || v[2] <= v[0] || v[3] <= v[1]) return null;
  return v;
}

function photoOf(query) {
  if (query?.type === "image") return query.preview;
  if (query?.type === "url") return query.url;
  return null;
}

function sourceKey(query) {
  return query.type === "image" ? query.file : query.url;
}

function garmentsRequest(query, k) {
  if (query.type === "image") {
    const form = new FormData();
    form.append("image", query.file, query.file.name || "pasted-image");
    form.append("k", String(k));
    return { method: "POST", body: form };
  }
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url: query.url, k }) };
}

function place(el, [x0, y0, x1, y1]) {
  el.style.left = `${x0 * 100}%`;
  el.style.top = `${y0 * 100}%`;
  el.style.width = `${(x1 - x0) * 100}%`;
  el.style.height = `${(y1 - y0) * 100}%`;
}

function label(g) {
  return `${KIND[g.kind] || "Other"} · ${Math.round(g.score * 100)}%`;
}

function drawGarments(garments) {
  const layer = $("#look-boxes");
  layer.replaceChildren(...garments.map((g, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "garment-box";
    b.dataset.index = String(i);
    b.setAttribute("aria-label", `Search the ${(KIND[g.kind] || "other thing").toLowerCase()} in this box`);
    b.title = label(g);
    const tag = document.createElement("span");
    tag.textContent = label(g);
    b.append(tag);
    place(b, g.box);
    b.addEventListener("click", () => search(g.box.slice()));
    return b;
  }));
  $("#shop-look").disabled = garments.length === 0;
  $("#look-count").textContent = garments.length
    ? `${garments.length} garment${garments.length === 1 ? "" : "s"} found: tap one to search it`
    : "No garment found: drag the box to search part of the photo";
}

async function loadGarments(query) {
  const key = sourceKey(query);
  if (found.key === key && found.garments) {
    if (drawn !== key) drawGarments(found.garments);
    drawn = key;
    return;
  }
  found = { key, garments: null };
  drawn = null;
  $("#look-boxes").replaceChildren();
  $("#look-count").textContent = "Looking for garments…";
  try {
    const result = await api("garments", "/api/garments", garmentsRequest(query, 0));
    if (found.key !== key) return;
    found.garments = result.garments;
    drawGarments(result.garments);
    drawn = key;
  } catch (err) {
    if (err.name !== "AbortError") $("#look-count").textContent = `Garments unavailable: ${err.message}`;
  }
}

function setCrop(region) {
  box = region ? region.slice() : [0, 0, 1, 1];
  place($("#crop"), box);
  $("#look-whole").hidden = !region;
}

function isWhole(b) {
  return b[0] <= 0.001 && b[1] <= 0.001 && b[2] >= 0.999 && b[3] >= 0.999;
}

function search(region) {
  if (!shown) return;
  const next = { ...shown };
  delete next.entry;
  if (region && !isWhole(region)) next.region = region.map((v) => Math.round(v * 1000) / 1000);
  else delete next.region;
  setCrop(next.region || null);
  $("#look-rows").hidden = true;
  searchRegion(next);
}

// --- the crop box: move it by its frame, resize it by a corner, or draw a new one on the photo -------------
function minimum() {
  const img = $("#look-img");
  return [Math.min(0.5, MIN_PIXELS / (img.naturalWidth || 400)), Math.min(0.5, MIN_PIXELS / (img.naturalHeight || 400))];
}

function wireCrop() {
  const frame = $("#look-frame");
  let drag = null;
  frame.addEventListener("pointerdown", (event) => {
    if (!shown || event.button > 0 || event.target.closest(".garment-box")) return;
    const handle = event.target.closest("[data-handle]")?.dataset.handle;
    const rect = frame.getBoundingClientRect();
    const at = [(event.clientX - rect.left) / rect.width, (event.clientY - rect.top) / rect.height];
    const mode = handle || (event.target.closest(".crop-edge, .crop-grip") ? "move" : "draw");
    drag = { mode, rect, at, start: box.slice(), moved: false };
    try { frame.setPointerCapture(event.pointerId); } catch { /* a synthetic event: no pointer to capture */ }
    event.preventDefault();
  });
  frame.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const { rect, at, start, mode } = drag;
    const x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    const [mw, mh] = minimum();
    let [x0, y0, x1, y1] = start;
    if (mode === "move") {
      const dx = Math.min(1 - x1, Math.max(-x0, x - at[0]));
      const dy = Math.min(1 - y1, Math.max(-y0, y - at[1]));
      [x0, y0, x1, y1] = [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
    } else if (mode === "draw") {
      [x0, x1] = [Math.min(at[0], x), Math.max(at[0], x)];
      [y0, y1] = [Math.min(at[1], y), Math.max(at[1], y)];
    } else {
      if (mode.includes("w")) x0 = Math.min(x, x1 - mw);
      if (mode.includes("e")) x1 = Math.max(x, x0 + mw);
      if (mode.includes("n")) y0 = Math.min(y, y1 - mh);
      if (mode.includes("s")) y1 = Math.max(y, y0 + mh);
    }
    box = [Math.max(0, x0), Math.max(0, y0), Math.min(1, x1), Math.min(1, y1)];
    drag.moved = true;
    place($("#crop"), box);
  });
  const release = () => {
    if (!drag) return;
    const { moved } = drag;
    drag = null;
    const [mw, mh] = minimum();
    if (!moved) return;
    if (box[2] - box[0] < mw || box[3] - box[1] < mh) { // a click or a sliver: keep the search as it was
      setCrop(shown?.region || null);
      return;
    }
    search(box);
  };
  frame.addEventListener("pointerup", release);
  frame.addEventListener("pointercancel", () => { drag = null; setCrop(shown?.region || null); });
}

// --- shop the look ------------------------------------------------------------------------------------
async function shopTheLook() {
  if (!shown) return;
  const rows = $("#look-rows");
  rows.hidden = false;
  rows.replaceChildren(Object.assign(document.createElement("p"), { className: "look-count", textContent: "Shopping the look…" }));
  try {
    const result = await api("look", "/api/garments", garmentsRequest(shown, ROW));
    rows.replaceChildren(...result.garments.map((g) => {
      const row = document.createElement("section");
      row.className = "look-row";
      const head = document.createElement("button");
      head.type = "button";
      head.className = "btn btn-link look-row-title";
      head.textContent = label(g);
      head.addEventListener("click", () => search(g.box.slice()));
      const cards = document.createElement("div");
      cards.className = "look-row-cards";
      cards.append(...g.hits.map((hit) => renderCard(hit.product, hit, pickProduct)));
      row.append(head, cards);
      return row;
    }));
    if (!result.garments.length) rows.firstChild?.remove();
  } catch (err) {
    if (err.name !== "AbortError") rows.replaceChildren(Object.assign(document.createElement("p"), { className: "look-count", textContent: err.message }));
  }
}

/** Show `query`'s photo with its garments and its crop (a photo or an image URL); hide the panel otherwise. */
export function showRegion(query) {
  const photo = photoOf(query);
  const panel = $("#look");
  if (!photo) return hideRegion();
  const changed = !shown || sourceKey(shown) !== sourceKey(query);
  shown = query;
  panel.hidden = false;
  if ($("#look-img").getAttribute("src") !== photo) $("#look-img").src = photo;
  setCrop(query.region || null);
  if (changed) $("#look-rows").hidden = true;
  loadGarments(query);
}

export function hideRegion() {
  shown = null;
  drawn = null;
  $("#look").hidden = true;
  $("#look-rows").hidden = true;
}

/** Build the panel in #look; `search(query)` runs a search of its own, `pick(product)` opens a product. */
export function wireRegion({ search: run, pick }) {
  searchRegion = run;
  pickProduct = pick;
  $("#look").innerHTML = `
    <div class="look-stage">
      <div class="look-frame" id="look-frame">
        <img id="look-img" alt="Your photo: drag the box, or tap a garment, to search part of it" draggable="false">
        <div class="look-boxes" id="look-boxes"></div>
        <div class="crop" id="crop" aria-hidden="true">
          <span class="crop-edge crop-edge-n"></span><span class="crop-edge crop-edge-s"></span>
          <span class="crop-edge crop-edge-w"></span><span class="crop-edge crop-edge-e"></span>
          <span class="crop-grip" title="Drag to move the box">⠿</span>
          <span class="crop-handle nw" data-handle="nw"></span><span class="crop-handle ne" data-handle="ne"></span>
          <span class="crop-handle sw" data-handle="sw"></span><span class="crop-handle se" data-handle="se"></span>
        </div>
      </div>
      <div class="look-side">
        <p class="look-count" id="look-count" aria-live="polite"></p>
        <p class="look-help">Drag the box or its corners (or draw a new one on the photo) to search just that part.</p>
        <button type="button" class="btn btn-link" id="look-whole" hidden>Search the whole photo</button>
        <button type="button" class="btn btn-secondary" id="shop-look" disabled>Shop the look</button>
      </div>
    </div>
    <div class="look-rows" id="look-rows" hidden></div>`;
  wireCrop();
  $("#look-whole").addEventListener("click", () => search(null));
  $("#shop-look").addEventListener("click", shopTheLook);
}
