// lookalike web page: a search's query — {type: "image", file, preview} | {type: "url", url} |
// {type: "product", id, title, image} | {type: "text"}, each with optional `text` (the words) — as the API
// request it sends and as the results header that names it.

import { showProductPictures } from "./cards.js";
import { colourRequest } from "./colour.js";
import { currentFilters } from "./filters.js";
import { kindRequest } from "./kind.js";

const $ = (selector) => document.querySelector(selector);

/** The picture part of `query` that words may move (a photo or a product), or null (words, a URL, none). */
export function pictureOf(query) {
  if (query?.type === "image") return { type: "image", file: query.file, preview: query.preview };
  if (query?.type === "product") {
    return { type: "product", id: query.id, title: query.title, image: query.image, pictures: query.pictures };
  }
  return null;
}

/** The fetch options of POST /api/search for `query` and `k` results: multipart for a photo, JSON otherwise. */
export function searchRequest(query, k) {
  const filters = currentFilters();
  if (query.type === "image") {
    const form = new FormData();
    form.append("image", query.file, query.file.name || "pasted-image");
    form.append("k", String(k));
    if (query.text) form.append("text", query.text);
    if (query.region) form.append("region", query.region.join(",")); // part of the photo (region.js)
    const fields = { ...filters, ...colourRequest(query, "prefer_colour"), ...kindRequest(query) }; // kind.js
    for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
    return { method: "POST", body: form };
  }
  const body = { url: { url: query.url }, product: { product_id: query.id } }[query.type] || {};
  if (query.text) body.text = query.text;
  if (query.region && query.type === "url") body.region = query.region;
  return {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...body, k, filters, ...colourRequest(query), ...kindRequest(query) }),
  };
}

/** Name `query` in the results header: its picture, what kind of search it is, and its words. */
export function showQuery(query) {
  const thumb = $("#query-thumb");
  const kind = $("#query-kind");
  const title = $("#results-heading");
  const words = $("#query-words");
  thumb.hidden = query.type === "text";
  words.hidden = !query.text || query.type === "text";
  words.textContent = words.hidden ? "" : `with the words “${query.text}”`;
  if (query.type === "image") {
    thumb.src = query.preview;
    kind.textContent = "Results for your photo";
    title.textContent = query.file.name || "Pasted image";
  } else if (query.type === "url") {
    thumb.src = query.url;
    kind.textContent = "Results for the image at";
    title.textContent = query.url;
  } else if (query.type === "product") {
    thumb.src = query.image;
    kind.textContent = "More like this product";
    title.textContent = query.title;
  }
  showProductPictures(query.type === "product" ? query.pictures : []);
  if (query.type === "text") {
    thumb.removeAttribute("src");
    kind.textContent = "Results for your words";
    title.textContent = query.text;
  }
  $("#query-summary").hidden = false;
  $("#search-empty").hidden = true;
}
