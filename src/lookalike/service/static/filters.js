// lookalike web page: the filter form, and facet counts that follow the other active filters.

import { api } from "./api.js";

const $ = (selector) => document.querySelector(selector);
export const FILTERS = ["category", "article_type", "gender", "colour", "brand"];

let total = null; // the catalogue's size, once the facets have said it

export function currentFilters() {
  const form = $("#filters");
  const filters = {};
  for (const name of FILTERS) {
    const value = form.elements[name].value;
    if (value) filters[name] = value;
  }
  for (const name of ["min_price", "max_price"]) {
    const value = form.elements[name].value.trim();
    if (value !== "" && !Number.isNaN(Number(value))) filters[name] = Number(value);
  }
  // "In stock only": leave out the products known to be out of stock (shown when the catalogue has stock data)
  if (form.elements.in_stock.checked && !$("#stock-field").hidden) filters.in_stock = true;
  return filters;
}

/** Set the form to `filters` (as currentFilters gives them; a value the catalogue lacks is offered anyway). */
export function setFilters(filters) {
  const form = $("#filters");
  for (const name of FILTERS) {
    const select = form.elements[name];
    const value = filters[name] == null ? "" : String(filters[name]);
    if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
    select.value = value;
  }
  for (const name of ["min_price", "max_price"]) form.elements[name].value = filters[name] ?? "";
  form.elements.in_stock.checked = filters.in_stock === true;
}

/** How many products the catalogue has (null until the facets have loaded). */
export function catalogTotal() {
  return total;
}

export function updateFilterCount() {
  const n = Object.keys(currentFilters()).length;
  const badge = $("#filter-count");
  badge.textContent = String(n);
  badge.hidden = n === 0;
}

// Facet counts follow the other active filters: /api/facets, asked with the active filters, counts each
// field over the products that match every filter but its own (values compared case-insensitively, ASCII
// only, like SQLite's NOCASE), so a chosen colour still shows how many products the other colours have.
const fold = (value) => String(value).replace(/[A-Z]/g, (c) => c.toLowerCase());
let pricePlaceholders = null; // the whole catalogue's price range, for the price boxes

function filterParams(filters) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) params.append(name, String(value));
  return params;
}

/** The filters' values and counts from /api/facets; rejects with an ApiError when they are unavailable. */
export async function loadFacets() {
  try {
    const facets = await api("facets", "/api/facets");
    const form = $("#filters");
    for (const name of FILTERS) {
      const select = form.elements[name];
      const values = facets.fields[name] || [];
      for (const { value } of values) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = value;
        select.append(option);
      }
      select.closest(".field").hidden = values.length === 0;
    }
    if (facets.price) {
      $("#price-range").hidden = false;
      pricePlaceholders = [`Min ${formatPrice(facets.price.min)}`, `Max ${formatPrice(facets.price.max)}`];
    }
    total = facets.total;
    $("#catalog-size").textContent = total ? `${total.toLocaleString()} products` : "Empty catalogue";
    $("#empty-catalog").hidden = total !== 0;
    const stock = facets.in_stock || facets.fields?.in_stock || []; // [[true, n], [false, m]]: stock is known
    $("#stock-field").hidden = stock.length === 0;
    if (Object.keys(currentFilters()).length) await updateFacetCounts(); // a price the browser kept
    else showCounts(facets);
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  }
}

function showCounts(facets) {
  // Each option's count (null: unknown, shown without one); an option nothing would match is not offered.
  const form = $("#filters");
  for (const name of FILTERS) {
    const counts = facets && new Map((facets.fields[name] || []).map((f) => [fold(f.value), f.count]));
    for (const option of form.elements[name].options) {
      if (!option.value) continue;
      const count = counts ? counts.get(fold(option.value)) || 0 : null;
      option.textContent = count == null ? option.value : `${option.value} (${count.toLocaleString()})`;
      option.disabled = count === 0 && !option.selected;
    }
  }
  const price = facets?.price; // the range of the products the filters match; none match: the catalogue's
  const [low, high] = price
    ? [`Min ${formatPrice(price.min)}`, `Max ${formatPrice(price.max)}`]
    : pricePlaceholders || ["Min", "Max"];
  form.elements.min_price.placeholder = low;
  form.elements.max_price.placeholder = high;
}

/** Recount the facets for the active filters (a newer call supersedes an older one). */
export async function updateFacetCounts() {
  try {
    showCounts(await api("facet-counts", `/api/facets?${filterParams(currentFilters())}`));
  } catch (err) {
    if (err.name !== "AbortError") showCounts(null); // counts unknown: every value stays on offer
  }
}

export function formatPrice(value) {
  return value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
