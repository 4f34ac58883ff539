// lookalike web page: search by words, photo, URL or product (or a picture with words); browse the catalogue.
// No build step.

import { abort, api } from "./api.js";
import { hideColours, restoreColours, showColours, wireColours } from "./colour.js";
import { currentFilters, formatPrice, loadFacets, updateFacetCounts, updateFilterCount } from "./filters.js";
import { pictureOf, searchRequest, showQuery } from "./query.js";
import { attached, currentWords, setAttached, setWords, wireWords } from "./words.js";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 24;
const NARROW = window.matchMedia("(max-width: 860px)"); // the phone layout: filters fold above the results

const state = {
  view: "search",
  query: null, // {type: "image", file, preview} | {type: "url", url} | {type: "product", id, title, image} |
  // {type: "text"}, each with `text` when it has words (query.js)
  browseOffset: 0,
  browseTotal: 0,
  shown: null, // the query whose results are on screen
  shownMeta: "",
  previews: new Set(), // object URLs of uploaded photos still in use
  entries: new Map(), // history entry key -> the query it showed, for Back and Forward (photos stay in memory)
  nextEntry: 1,
  page: Math.random().toString(36).slice(2), // entry keys of an earlier load of the page are not this one's
};

// --- messages & loading -----------------------------------------------------------------------
function showError(message) {
  $("#alert-text").textContent = message;
  $("#alert").hidden = false;
}

function clearError() {
  $("#alert").hidden = true;
}

function setBusy(kind, busy) {
  const grid = kind === "search" ? $("#results") : $("#browse-grid");
  $(kind === "search" ? "#search-progress" : "#browse-progress").hidden = !busy;
  grid.setAttribute("aria-busy", String(busy));
}

function skeletons(grid, count) {
  grid.replaceChildren();
  for (let i = 0; i < count; i += 1) {
    const card = document.createElement("div");
    card.className = "card skeleton";
    card.setAttribute("aria-hidden", "true");
    card.innerHTML = '<span class="card-img"></span><span class="card-body">'
      + '<span class="line short"></span><span class="line"></span><span class="line short"></span></span>';
    grid.append(card);
  }
}

function onFiltersChanged() {
  updateFilterCount();
  updateFacetCounts();
  // Beside the results (wide screens) the filters stay in view; on a phone the open panel would hide the
  // results, so it folds away and the results come up.
  const narrow = NARROW.matches;
  if (narrow) $("#filters-panel").open = false;
  if (state.view === "browse") {
    state.browseOffset = 0;
    loadBrowse();
    if (narrow) scrollToResults("browse");
  } else if (state.query) {
    runSearch(state.query, { scroll: narrow });
  }
}

// --- rendering --------------------------------------------------------------------------------
function renderCard(product, score, onPick, duplicates = []) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  const img = card.querySelector("img");
  img.src = product.image_url;
  img.alt = product.title || `Product ${product.id}`;
  card.dataset.id = product.id;
  card.querySelector(".card-brand").textContent = product.brand || ""; // no brand: nothing in its place
  card.querySelector(".card-title").textContent = product.title || product.id;
  const price = card.querySelector(".card-price");
  price.textContent = product.price == null ? "" : formatPrice(product.price);
  const badge = card.querySelector(".card-score");
  if (score == null) {
    badge.textContent = "Find lookalikes";
  } else {
    badge.textContent = score.toFixed(3);
    badge.title = "Similarity score (cosine; 1 = identical)";
  }
  if (duplicates.length) { // products with the very same picture, shown once (the API's "duplicates")
    const more = document.createElement("span");
    more.className = "card-duplicates";
    more.textContent = `${duplicates.length} more with this picture`;
    more.title = duplicates.join(", ");
    card.querySelector(".card-body").append(more);
  }
  card.setAttribute("aria-label", `${product.title || product.id}. Search for products like this one.`);
  card.addEventListener("click", () => onPick(product));
  return card;
}

function pickProduct(product) {
  const query = { type: "product", id: product.id, title: product.title || product.id, image: product.image_url };
  remember(query, location.hash === hashFor(query));
  showView("search");
  runSearch(query);
}

// --- history: every search is an entry, so Back and Forward show again what the URL was showing -----------
function hashFor(query) {
  return query.type === "product" ? `#product/${encodeURIComponent(query.id)}` : "#search";
}

function remember(query, replace = false) {
  query.entry = `${state.page}:${state.nextEntry}`;
  state.nextEntry += 1;
  state.entries.set(query.entry, query);
  history[replace ? "replaceState" : "pushState"]({ entry: query.entry }, "", hashFor(query));
}

function scrollToResults(view = "search") {
  // On a phone the query panel fills the screen: bring the results up. On a wide screen they are in view.
  const head = $(`#view-${view} .results-head`);
  const top = head.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.35) head.scrollIntoView({ behavior: "smooth", block: "start" });
}

function releasePreviews() {
  for (const url of state.previews) {
    if (url !== state.query?.preview && url !== state.shown?.preview) {
      URL.revokeObjectURL(url);
      state.previews.delete(url);
    }
  }
}

// --- search -----------------------------------------------------------------------------------
async function runSearch(query, { scroll = true } = {}) {
  if (query.type === "image" && !state.previews.has(query.preview)) { // back to a photo: its preview was let go
    query.preview = URL.createObjectURL(query.file);
    state.previews.add(query.preview);
  }
  if (query !== state.query) { // a new search: the boxes show what it searched for
    $("#url-input").value = query.type === "url" ? query.url : "";
    setWords(query.text);
    setAttached(pictureOf(query));
  }
  if (query !== state.shown) hideColours(); // the chips were the other search's
  state.query = query;
  clearError();
  showQuery(query);
  const grid = $("#results");
  if (!grid.querySelector(".card:not(.skeleton)")) skeletons(grid, 8);
  if (scroll) scrollToResults(); // after the skeletons: the page must be long enough to scroll
  setBusy("search", true);
  $("#results-meta").textContent = "Searching…";
  try {
    const result = await api("search", "/api/search", searchRequest(query));
    grid.replaceChildren(...result.hits.map((hit) => renderCard(hit.product, hit.score, pickProduct, hit.duplicates)));
    state.shown = query;
    showColours(query, result.colour);
    releasePreviews();
    const n = result.count;
    const noun = query.type === "text" ? ["match", "matches"] : ["lookalike", "lookalikes"];
    state.shownMeta = n === 0
      ? "No products match these filters."
      : `${n} ${noun[n === 1 ? 0 : 1]} · ${Math.round(result.took_ms)} ms`;
    $("#results-meta").textContent = state.shownMeta;
    setBusy("search", false);
  } catch (err) {
    if (err.name === "AbortError") return; // a newer search replaced this one
    setBusy("search", false);
    grid.querySelectorAll(".skeleton").forEach((el) => el.remove());
    // Keep what was on screen, labelled as what it is; with nothing on screen, show the introduction.
    state.query = state.shown;
    setAttached(pictureOf(state.shown)); // the words box keeps the words, to be corrected
    if (history.state?.entry === query.entry && query !== state.shown) { // the URL says so too
      const shown = state.shown;
      history.replaceState(shown && { entry: shown.entry }, "", shown ? hashFor(shown) : "#search");
    }
    if (state.shown) {
      showQuery(state.shown);
      restoreColours();
      $("#results-meta").textContent = state.shownMeta;
    } else {
      $("#query-summary").hidden = true;
      $("#search-empty").hidden = false;
      $("#results-meta").textContent = "";
    }
    releasePreviews();
    showError(err.message);
  }
}

function searchFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`“${file.name}” is not an image. Choose a JPEG, PNG, WebP, GIF, BMP or TIFF photo.`);
    return;
  }
  const query = withWords({ type: "image", file });
  remember(query);
  showView("search");
  runSearch(query);
}

function searchUrl(raw) {
  const url = raw.trim();
  if (!/^https?:\/\/\S+$/i.test(url)) {
    showError("Enter an image URL that starts with http:// or https://");
    return;
  }
  const query = withWords({ type: "url", url });
  remember(query);
  showView("search");
  runSearch(query);
}

function withWords(query) {
  const text = currentWords();
  if (text) query.text = text;
  return query;
}

function searchBox() {
  // Enter in the words box: with a URL in the URL box, that image and the words; with a photo or product
  // beside the box, that picture and the words (or alone, when the words were cleared); else the words alone.
  const url = $("#url-input").value.trim();
  if (url) return searchUrl(url);
  const picture = attached();
  const query = withWords(picture ? { ...picture } : { type: "text" });
  if (!picture && !query.text) {
    showError("Type a few words to search by, or choose a photo.");
    return;
  }
  remember(query);
  showView("search");
  runSearch(query);
}

// --- browse -----------------------------------------------------------------------------------
async function loadBrowse() {
  clearError();
  const grid = $("#browse-grid");
  if (!grid.querySelector(".card:not(.skeleton)")) skeletons(grid, 12);
  setBusy("browse", true);
  const params = new URLSearchParams({ offset: String(state.browseOffset), limit: String(PAGE_SIZE) });
  for (const [name, value] of Object.entries(currentFilters())) params.append(name, String(value));
  try {
    const page = await api("browse", `/api/products?${params}`);
    state.browseTotal = page.total;
    grid.replaceChildren(...page.items.map((product) => renderCard(product, null, pickProduct)));
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    const current = Math.floor(page.offset / PAGE_SIZE) + 1;
    $("#browse-meta").textContent = `${page.total.toLocaleString()} product${page.total === 1 ? "" : "s"}`;
    $("#page-info").textContent = `Page ${current} of ${pages}`;
    $("#prev-page").disabled = page.offset === 0;
    $("#next-page").disabled = page.offset + PAGE_SIZE >= page.total;
    setBusy("browse", false);
  } catch (err) {
    if (err.name === "AbortError") return;
    setBusy("browse", false);
    grid.querySelectorAll(".skeleton").forEach((el) => el.remove());
    showError(err.message);
  }
}

function movePage(step) {
  const offset = state.browseOffset + step * PAGE_SIZE;
  if (offset < 0 || offset >= state.browseTotal) return;
  state.browseOffset = offset;
  loadBrowse();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// --- views & routing --------------------------------------------------------------------------
function showView(view) {
  state.view = view;
  $("#view-search").hidden = view !== "search";
  $("#view-browse").hidden = view !== "browse";
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

function showIntro() {
  abort("search");
  setBusy("search", false);
  state.query = null;
  state.shown = null;
  $("#results").replaceChildren();
  $("#query-summary").hidden = true;
  $("#search-empty").hidden = false;
  $("#results-meta").textContent = "";
  $("#url-input").value = "";
  setWords("");
  setAttached(null);
  hideColours();
  releasePreviews();
}

function route() {
  // Show what the URL describes: the catalogue, a search this page ran (its history entry), a product
  // (a link or a reload), the search view as it is (the Search tab), or the introduction.
  const hash = location.hash;
  const remembered = state.entries.get(history.state?.entry);
  if (hash === "#browse") {
    showView("browse");
    loadBrowse();
  } else if (remembered) {
    showView("search");
    if (remembered !== state.query) runSearch(remembered);
  } else if (hash.startsWith("#product/")) {
    const id = decodeURIComponent(hash.slice("#product/".length));
    showView("search");
    api("product", `/api/products/${encodeURIComponent(id)}`)
      .then((product) => {
        const query = { type: "product", id, title: product.title || id, image: product.image_url };
        remember(query, true);
        runSearch(query);
      })
      .catch((err) => { if (err.name !== "AbortError") showError(err.message); });
  } else if (hash === "#search" && state.query) {
    history.replaceState({ entry: state.query.entry }, "", hash); // the tab: this entry shows these results
    showView("search");
  } else {
    showView("search");
    showIntro();
  }
}

// --- input: files, drag and drop, paste, URL --------------------------------------------------
function imageFromTransfer(transfer) {
  for (const file of transfer.files || []) if (file.type.startsWith("image/") || !file.type) return file;
  for (const item of transfer.items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return null;
}

function urlFromTransfer(transfer) {
  const list = transfer.getData("text/uri-list") || transfer.getData("text/plain") || "";
  const first = list.split(/\r?\n/).find((line) => line && !line.startsWith("#")) || "";
  return /^https?:\/\//i.test(first.trim()) ? first.trim() : null;
}

function wireInputs() {
  for (const id of ["#file-input", "#camera-input"]) {
    const input = $(id);
    input.addEventListener("change", () => {
      searchFile(input.files[0]);
      input.value = ""; // choosing the same file again searches again
    });
  }
  const dropzone = $("#dropzone");
  dropzone.addEventListener("click", (event) => {
    if (!event.target.closest("label, input")) $("#file-input").click();
  });
  dropzone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("#file-input").click();
    }
  });

  // The whole window takes drops, so a photo dropped beside the box is never opened by the browser.
  let depth = 0;
  const overlay = $("#drop-overlay");
  const isDrag = (event) => [...(event.dataTransfer?.types || [])].some((t) => t === "Files" || t === "text/uri-list");
  window.addEventListener("dragenter", (event) => {
    if (!isDrag(event)) return;
    depth += 1;
    overlay.hidden = false;
    dropzone.classList.add("is-over");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) {
      overlay.hidden = true;
      dropzone.classList.remove("is-over");
    }
  });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    dropzone.classList.remove("is-over");
    const file = imageFromTransfer(event.dataTransfer);
    if (file) return searchFile(file);
    const url = urlFromTransfer(event.dataTransfer);
    if (url) {
      $("#url-input").value = url;
      return searchUrl(url);
    }
    showError("Drop an image file, or an image dragged from another page.");
  });

  document.addEventListener("paste", (event) => {
    const transfer = event.clipboardData;
    if (!transfer) return;
    const file = imageFromTransfer(transfer);
    if (file) {
      event.preventDefault();
      searchFile(file);
      return;
    }
    const text = (transfer.getData("text/plain") || "").trim();
    const inField = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    const urlInput = $("#url-input");
    if (/^https?:\/\/\S+$/i.test(text) && (!inField || (event.target === urlInput && !urlInput.value))) {
      event.preventDefault();
      urlInput.value = text;
      searchUrl(text);
    }
  });

  $("#url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchUrl($("#url-input").value);
  });
}

function wireControls() {
  const form = $("#filters");
  form.addEventListener("change", onFiltersChanged);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", () => setTimeout(onFiltersChanged, 0));
  $("#alert-close").addEventListener("click", clearError);
  $("#prev-page").addEventListener("click", () => movePage(-1));
  $("#next-page").addEventListener("click", () => movePage(1));
  window.addEventListener("popstate", route); // fragment links and back/forward
  $("#query-thumb").addEventListener("error", (event) => { event.target.hidden = true; });
  const filtersPanel = $("#filters-panel");
  const syncPanel = () => { filtersPanel.open = !NARROW.matches; };
  syncPanel();
  NARROW.addEventListener("change", syncPanel);
  filtersPanel.querySelector("summary").addEventListener("click", (event) => {
    if (!NARROW.matches) event.preventDefault(); // always open beside the results on wide screens
  });
}

wireInputs();
wireWords(searchBox);
wireControls();
wireColours((query) => runSearch(query, { scroll: false }));
loadFacets().catch((err) => showError(`Filters are unavailable: ${err.message}`));
route();
