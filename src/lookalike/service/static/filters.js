// lookalike web page: the filter form, and facet counts that follow the other active filters.

import { api } from "./api.js";

const $ = (selector) => document.querySelector(selector);
export const FILTERS = ["category", "article_type", "gender", "colour", "brand"];
let catalogueSize = NaN; // from /api/facets
let facetRows = null; // Promise of every product's filter fields, read once a filter is first set

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
  return filters;
}

export function currentK() {
  return Number($("#filters").elements.k.value) || 24;
}

export function updateFilterCount() {
  const n = Object.keys(currentFilters()).length;
  const badge = $("#filter-count");
  badge.textContent = String(n);
  badge.hidden = n === 0;
}

// Facet counts follow the other active filters: a field's counts are over the products that match every
// active filter but its own, as the server filters (values compared case-insensitively, ASCII only, like
// SQLite's NOCASE). /api/facets counts the whole catalogue, so for a catalogue of up to FACET_LIMIT products
// the page reads every product's filter fields once (when a filter is first set) and counts here; for a
// larger one it shows no counts while other filters are active, rather than whole-catalogue counts that
// would not hold.
const FACET_LIMIT = 2000;
const fold = (value) => String(value).replace(/[A-Z]/g, (c) => c.toLowerCase());

/** The filters' values and counts from /api/facets; rejects with an ApiError when they are unavailable. */
export async function loadFacets() {
  try {
    const facets = await api("facets", "/api/facets");
    const form = $("#filters");
    for (const name of FILTERS) {
      const select = form.elements[name];
      const values = facets.fields[name] || [];
      for (const { value, count } of values) {
        const option = document.createElement("option");
        option.value = value;
        option.dataset.count = String(count);
        select.append(option);
      }
      select.closest(".field").hidden = values.length === 0;
    }
    if (facets.price) {
      $("#price-range").hidden = false;
      form.elements.min_price.placeholder = `Min ${formatPrice(facets.price.min)}`;
      form.elements.max_price.placeholder = `Max ${formatPrice(facets.price.max)}`;
    }
    $("#catalog-size").textContent = `${facets.total.toLocaleString()} products`;
    catalogueSize = facets.total;
    await updateFacetCounts();
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  }
}

async function loadFacetRows(total) {
  // Every product's filter fields, for the counts; null when they cannot be read (the counts then say less).
  const rows = [];
  try {
    for (let offset = 0; offset < total; offset += 200) {
      const page = await api("facet-rows", `/api/products?offset=${offset}&limit=200`);
      for (const product of page.items) {
        const row = { price: product.price };
        for (const name of FILTERS) row[name] = product[name] == null ? null : fold(product[name]);
        rows.push(row);
      }
      if (page.items.length === 0) break;
    }
  } catch {
    return null;
  }
  return rows;
}

function rowMatches(row, filters, except) {
  for (const [name, value] of Object.entries(filters)) {
    if (name === except) continue;
    if (name === "min_price") {
      if (row.price == null || row.price < value) return false;
    } else if (name === "max_price") {
      if (row.price == null || row.price > value) return false;
    } else if (row[name] !== fold(value)) {
      return false;
    }
  }
  return true;
}

export async function updateFacetCounts() {
  const filters = currentFilters();
  if (Object.keys(filters).length && facetRows === null && Number.isFinite(catalogueSize)) {
    facetRows = catalogueSize <= FACET_LIMIT ? loadFacetRows(catalogueSize) : Promise.resolve(null);
  }
  const rows = Object.keys(filters).length ? await facetRows : null;
  const form = $("#filters");
  for (const name of FILTERS) {
    const others = Object.keys(filters).some((other) => other !== name);
    let counts = null; // value (folded) -> count, over the products matching the other filters
    if (rows && others) {
      counts = new Map();
      for (const row of rows) {
        const value = row[name];
        if (value != null && rowMatches(row, filters, name)) counts.set(value, (counts.get(value) || 0) + 1);
      }
    }
    const select = form.elements[name];
    for (const option of select.options) {
      if (!option.value) continue;
      let count = Number(option.dataset.count); // the whole catalogue's count
      if (others) count = counts ? counts.get(fold(option.value)) || 0 : null;
      option.textContent = count == null ? option.value : `${option.value} (${count.toLocaleString()})`;
      option.disabled = count === 0 && !option.selected; // nothing would match: not offered
    }
  }
}

export function formatPrice(value) {
  return value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
