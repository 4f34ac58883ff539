// lookalike web page: search by words, photo, URL or product (or a picture with words); browse the catalogue.
// No build step.

import { abort, api } from "./api.js";
import { pictureUrls, renderCard, skeletons } from "./cards.js";
import { hideColours, restoreColours, showColours, wireColours } from "./colour.js";
import { decorateCards, hideJudged, noteIgnored, showJudged, wireFeedback, withFeedback } from "./feedback.js";
import { catalogTotal, currentFilters, loadFacets, updateFacetCounts, updateFilterCount } from "./filters.js";
import { wireInputs } from "./inputs.js";
import { hideKinds, restoreKinds, showKinds, wireKinds } from "./kind.js";
import { pictureOf, searchRequest, showQuery } from "./query.js";
import { hideRegion, showRegion, wireRegion } from "./region.js";
import { PAGE, applyState, browseHash, hashFor, introHash, parseHash } from "./urlstate.js";
import { attached, currentWords, setAttached, setWords, wireWords } from "./words.js";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 24;
const MAX_RESULTS = 4 * PAGE; // "Show more" up to this many (the service's max_k is 100 by default)
const NARROW = window.matchMedia("(max-width: 860px)"); // the phone layout: filters fold above the results

const state = {
  view: "search",
  query: null, // {type: "image", file, preview} | {type: "url", url} | {type: "product", id, title, image} |
  // {type: "text"}, each with `text` when it has words (query.js)
  k: PAGE, // results asked for: a page more with each "Show more"
  browseOffset: 0,
  browseTotal: 0,
  shown: null, // the query whose results are on screen
  shownHash: "", // the address of the results on screen (urlstate.js)
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

function onFiltersChanged() {
  updateFilterCount();
  updateFacetCounts();
  // Beside the results (wide screens) the filters stay in view; on a phone the open panel would hide the
  // results, so it folds away and the results come up.
  const narrow = NARROW.matches;
  if (narrow) $("#filters-panel").open = false;
  if (state.view === "browse") {
    state.browseOffset = 0;
    history.pushState(null, "", browseHash());
    loadBrowse();
    if (narrow) scrollToResults("browse");
  } else if (state.query) {
    state.k = PAGE;
    remember(state.query); // a new search: its own address, Back returns to the filters before
    runSearch(state.query, { scroll: narrow });
  } else {
    history.replaceState(null, "", introHash());
  }
}

function pickProduct(product, pictures = pictureUrls(product)) {
  const title = product.title || product.id;
  const query = { type: "product", id: product.id, title, image: product.image_url, pictures };
  state.k = PAGE;
  remember(query, location.hash === hashFor(query));
  showView("search");
  runSearch(query);
}

// --- history: every search is an entry, so Back and Forward show again what the URL was showing -----------
// The address holds the search, its filters and colour settings (urlstate.js); the entry holds the query
// itself, for an uploaded photo (which no address can hold).
function remember(query, replace = false) {
  query.entry = `${state.page}:${state.nextEntry}`;
  state.nextEntry += 1;
  state.entries.set(query.entry, query);
  history[replace ? "replaceState" : "pushState"]({ entry: query.entry }, "", hashFor(query, state.k));
}

function scrollToResults(view = "search") {
  // On a phone the query panel fills the screen: bring the results up. On a wide screen they are in view.
  if (view === "search" && NARROW.matches) { // the photo panel (garments, crop box) sits above the grid
    const top = $("#results").getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.45) window.scrollBy({ top: top - window.innerHeight * 0.3, behavior: "smooth" });
    state.scrollUntil = Date.now() + 4000; // it may still grow above them
    return;
  }
  const head = $(`#view-${view} .results-head`);
  const top = head.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.35) head.scrollIntoView({ behavior: "smooth", block: "start" });
  if (view === "search") state.scrollUntil = Date.now() + 4000; // the photo panel may still grow above them
}

// On a phone, the photo panel (its garments, the crop box) is drawn after the search starts and pushes the
// results down: bring them up again while the search that asked for it is recent.
new ResizeObserver(() => {
  if (NARROW.matches && state.scrollUntil && Date.now() < state.scrollUntil) scrollToResults();
}).observe($("#look"));

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
  if (query !== state.shown) { // the chips were the other search's
    hideColours();
    hideKinds();
  }
  state.query = query;
  clearError();
  showQuery(query);
  const grid = $("#results");
  if (!grid.querySelector(".card:not(.skeleton)")) skeletons(grid, 8);
  if (scroll) scrollToResults(); // after the skeletons: the page must be long enough to scroll
  setBusy("search", true);
  $("#results-meta").textContent = "Searching…";
  try {
    const result = await api("search", "/api/search", withFeedback(searchRequest(query, state.k), query));
    grid.replaceChildren(...result.hits.map((hit) => renderCard(hit.product, hit, pickProduct)));
    decorateCards(grid, query, result.hits); // like / dislike on each card, the judged above (feedback.js)
    noteIgnored(query, result.ignored);
    state.shown = query;
    state.shownHash = location.hash;
    $("#more").hidden = result.count < state.k || state.k + PAGE > MAX_RESULTS; // maybe more: "Show more"
    showColours(query, result.colour);
    showKinds(query, result.kind); // the kinds the picture looks like, the one ranked by (kind.js)
    showRegion(query); // the photo with its garments and crop box (region.js)
    releasePreviews();
    const n = result.count;
    const noun = query.type === "text" ? ["match", "matches"] : ["lookalike", "lookalikes"];
    state.shownMeta = n === 0
      ? nothingFound()
      : `${n} ${noun[n === 1 ? 0 : 1]} · ${Math.round(result.took_ms)} ms`;
    if (result.understood) state.shownMeta = `Showing results for “${result.understood}” · ${state.shownMeta}`;
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
      history.replaceState(shown && { entry: shown.entry }, "", shown ? hashFor(shown, state.k) : introHash());
    }
    if (state.shown) {
      showQuery(state.shown);
      restoreColours();
      restoreKinds();
      showRegion(state.shown);
      showJudged(state.shown);
      $("#results-meta").textContent = state.shownMeta;
    } else {
      $("#query-summary").hidden = true;
      $("#search-empty").hidden = false;
      $("#results-meta").textContent = "";
      $("#more").hidden = true;
    }
    releasePreviews();
    showError(err.message);
  }
}

/** What a search that found nothing says: the catalogue is empty (and how to fill it), or the filters
 * leave nothing. */
function nothingFound() {
  if (catalogTotal() === 0) {
    return "The catalogue is empty: add products with lookalike ingest CATALOG --images FOLDER "
      + "(or --csv FILE), then reload this page.";
  }
  return Object.keys(currentFilters()).length ? "No products match these filters." : "No products match.";
}

function showMore() {
  if (!state.query || state.k + PAGE > MAX_RESULTS) return;
  state.k += PAGE; // the same search, a page more: the address says how many
  history.replaceState({ entry: state.query.entry }, "", hashFor(state.query, state.k));
  runSearch(state.query, { scroll: false });
}

function searchFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`“${file.name}” is not an image. Choose a JPEG, PNG, WebP, GIF, BMP or TIFF photo.`);
    return;
  }
  const query = withWords({ type: "image", file });
  state.k = PAGE; // a new search: its first page
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
  state.k = PAGE; // a new search: its first page
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
  state.k = PAGE; // a new search: its first page
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
    $("#browse-meta").textContent = page.total === 0 && catalogTotal() === 0
      ? nothingFound() : `${page.total.toLocaleString()} product${page.total === 1 ? "" : "s"}`;
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
  history.replaceState(null, "", browseHash(offset / PAGE_SIZE + 1));
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
  $("#more").hidden = true;
  state.shownHash = "";
  $("#url-input").value = "";
  setWords("");
  setAttached(null);
  hideColours();
  hideKinds();
  hideRegion();
  hideJudged();
  releasePreviews();
}

async function route() {
  // Show what the address describes (urlstate.js): its filters and colour settings, then the catalogue, a
  // search this page ran (its history entry: an uploaded photo too), a search the address names (words, an
  // image URL, a product: a link or a reload), or the introduction.
  const hash = location.hash;
  if (hash.includes("?")) {
    await facetsReady; // the filters' options are there before the address's filters are set
    if (location.hash !== hash) return; // a search started meanwhile: its address is the one shown
  }
  const at = parseHash(hash);
  const remembered = state.entries.get(history.state?.entry);
  const before = JSON.stringify(currentFilters());
  applyState(at);
  if (JSON.stringify(currentFilters()) !== before) {
    updateFilterCount();
    updateFacetCounts();
  }
  if (at.view === "browse") {
    showView("browse");
    state.browseOffset = (at.page - 1) * PAGE_SIZE;
    loadBrowse();
    return;
  }
  showView("search");
  state.k = at.k;
  if (remembered) {
    remembered.prefer = at.prefer;
    remembered.kind = at.kind;
    if (remembered !== state.query || location.hash !== state.shownHash) runSearch(remembered);
  } else if (at.view === "product") {
    api("product", `/api/products/${encodeURIComponent(at.id)}`)
      .then((product) => {
        const found = { title: product.title || at.id, image: product.image_url, pictures: pictureUrls(product) };
        const query = { ...at.query, ...found, prefer: at.prefer, kind: at.kind };
        remember(query, true);
        runSearch(query);
      })
      .catch((err) => { if (err.name !== "AbortError") showError(err.message); });
  } else if (at.query) {
    const query = { ...at.query, prefer: at.prefer, kind: at.kind };
    remember(query, true);
    runSearch(query);
  } else {
    showIntro();
    if (at.view === "photo") { // an uploaded photo's search, reloaded: the photo stayed in the old page
      $("#results-meta").textContent = "The photo of that search is not kept when the page reloads: choose or drop it again.";
    }
  }
}

/** A tab (or a link to a view): the other view, with the filters on screen; the search view shows its
 * results again, searched anew when the filters changed meanwhile. */
function openView(view) {
  if (view === state.view) return;
  if (view === "browse") {
    state.browseOffset = 0;
    history.pushState(null, "", browseHash());
    showView("browse");
    loadBrowse();
    return;
  }
  const query = state.query;
  history.pushState(query && { entry: query.entry }, "", query ? hashFor(query, state.k) : introHash());
  showView("search");
  if (query && location.hash !== state.shownHash) runSearch(query, { scroll: false });
}

function wireControls() {
  const form = $("#filters");
  form.addEventListener("change", onFiltersChanged);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", () => setTimeout(onFiltersChanged, 0));
  $("#alert-close").addEventListener("click", clearError);
  $("#prev-page").addEventListener("click", () => movePage(-1));
  $("#load-more").addEventListener("click", showMore);
  document.addEventListener("click", (event) => { // the tabs and links to a view keep the filters
    const link = event.target.closest('a[href="#browse"], a[href="#search"]');
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    openView(link.getAttribute("href").slice(1));
  });
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

wireInputs({ searchFile, searchUrl, showError });
wireWords(searchBox);
wireControls();
wireColours((query) => { // a colour chosen, or matching switched: a search of its own, with its address
  remember(query);
  runSearch(query, { scroll: false });
});
wireKinds((query) => { remember(query); runSearch(query, { scroll: false }); }); // a kind chosen: a new entry
wireRegion({ search: (query) => { remember(query); runSearch(query, { scroll: false }); }, pick: pickProduct });
wireFeedback((query) => { remember(query); runSearch(query, { scroll: false }); }); // a like or dislike: a new entry
const facetsReady = loadFacets().catch((err) => showError(`Filters are unavailable: ${err.message}`));
route();
