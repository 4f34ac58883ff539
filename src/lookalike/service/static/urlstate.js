// lookalike web page: the address says what is on screen, so a reload, a shared link or Back shows it again.
//
//   #search?q=WORDS                 words alone
//   #search?url=URL&q=WORDS         an image URL (with or without words)
//   #product/ID?q=WORDS             more like a catalogue product (with or without words)
//   #photo                          an uploaded photo: kept in this page's memory only (Back and Forward
//                                   show it again; a reload cannot, and asks for the photo again)
//   #browse?page=N                  the catalogue
//
// each with the filters (category=Apparel&in_stock=true ...), the colour chosen (prefer=red), colour matching
// off (colour_rank=false), the kind chosen (kind=Dresses: kind.js), how many results are shown when more than the first page (n=48) and the products
// liked and disliked (like=ID&unlike=ID, repeated: feedback.js).

import { feedbackParams, readFeedback } from "./feedback.js";
import { FILTERS, currentFilters, setFilters } from "./filters.js";
import { parseRegion, regionText } from "./region.js";

export const PAGE = 24; // results per "Show more"
const PRICES = ["min_price", "max_price"];

/** The state part of an address: the filters and the colour settings. */
function stateParams(params) {
  for (const [name, value] of Object.entries(currentFilters())) params.set(name, String(value));
  if (!document.querySelector("#colour-rank").checked) params.set("colour_rank", "false");
  return params;
}

function joined(path, params) {
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

/** The address of a search for `query` showing `k` results, with the filters and colour settings on screen. */
export function hashFor(query, k = PAGE) {
  const params = new URLSearchParams();
  let path = "#search";
  if (query.type === "product") path = `#product/${encodeURIComponent(query.id)}`;
  else if (query.type === "image") path = "#photo";
  else if (query.type === "url") params.set("url", query.url);
  if (query.text) params.set("q", query.text);
  if (query.prefer) params.set("prefer", query.prefer);
  if (query.kind) params.set("kind", query.kind);
  if (query.region) params.set("region", regionText(query.region)); // part of the picture (region.js)
  if (k > PAGE) params.set("n", String(k));
  feedbackParams(query, params); // like=ID&unlike=ID (feedback.js)
  return joined(path, stateParams(params));
}

/** The address of the catalogue view at `page` (1-based) with the filters on screen. */
export function browseHash(page = 1) {
  const params = new URLSearchParams();
  if (page > 1) params.set("page", String(page));
  return joined("#browse", stateParams(params));
}

/** The address of the page with no search, keeping the filters on screen. */
export function introHash() {
  return joined("#search", stateParams(new URLSearchParams()));
}

/** What an address describes: {view: "browse" | "product" | "photo" | "search" | "", id, query, filters, prefer,
 * kind, rank, k, page}. `query` is the search it names (words, URL, product) or null. */
export function parseHash(hash) {
  const raw = hash.replace(/^#/, "");
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1));
  const filters = {};
  for (const name of FILTERS) if (params.get(name)) filters[name] = params.get(name);
  for (const name of PRICES) {
    const value = params.get(name);
    if (value !== null && value.trim() !== "" && !Number.isNaN(Number(value))) filters[name] = Number(value);
  }
  if (params.get("in_stock") === "true") filters.in_stock = true;
  const text = params.get("q")?.trim() || null;
  const url = params.get("url")?.trim() || null;
  const judged = readFeedback(params); // the liked and disliked products (feedback.js)
  const out = {
    view: "", id: null, query: null, filters,
    prefer: params.get("prefer") || null,
    kind: params.get("kind")?.trim() || null,
    rank: params.get("colour_rank") !== "false",
    k: Math.max(PAGE, Math.min(4 * PAGE, Number(params.get("n")) || PAGE)),
    page: Math.max(1, Number(params.get("page")) || 1),
  };
  if (path === "browse") return { ...out, view: "browse" };
  if (path === "photo") return { ...out, view: "photo" };
  if (path.startsWith("product/")) {
    const id = decodeURIComponent(path.slice("product/".length));
    return { ...out, view: "product", id, query: { type: "product", id, ...(text && { text }), ...judged } };
  }
  if (path === "search") {
    const region = url && parseRegion(params.get("region"));
    const query = url ? { type: "url", url, ...(text && { text }), ...(region && { region }), ...judged }
      : text ? { type: "text", text, ...judged } : null;
    return { ...out, view: "search", query };
  }
  return out;
}

/** Put the address's filters and colour switch on screen. */
export function applyState(state) {
  setFilters(state.filters);
  document.querySelector("#colour-rank").checked = state.rank;
}
