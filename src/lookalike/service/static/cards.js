// lookalike web page: a product card (a result or a catalogue product) and the product's pictures.
//
// A result shows the picture of the product that matched the query (hit.matched_image, an index into the
// product's pictures) and, over the picture, the others (move the pointer across it); its badge is the figure
// the results are ordered by (rank_score: the similarity plus the colour agreement), the similarity beside it.

import { formatPrice } from "./filters.js";

const $ = (selector) => document.querySelector(selector);

/** The URLs of a product's pictures, the main one first: the API's list when it gives one, else
 * /api/products/{id}/images/{n} for each picture it counts (the main picture at /api/products/{id}/image). */
export function pictureUrls(product, hit = null) {
  const listed = hit?.images || product.images;
  if (Array.isArray(listed) && listed.length && listed.every((u) => typeof u === "string" && u.startsWith("/api/"))) {
    return listed;
  }
  const count = Array.isArray(listed) ? listed.length : Number(product.image_count || hit?.image_count) || 1;
  const base = product.image_url;
  return Array.from({ length: Math.max(1, count) }, (_, n) => (n === 0 ? base : base.replace(/\/image$/, `/images/${n}`)));
}

/** Show the pictures of `pictures` in turn as the pointer moves across `img`; back to `shown` when it leaves. */
function browsePictures(card, img, pictures, shown) {
  const box = card.querySelector(".card-img");
  box.addEventListener("pointermove", (event) => {
    const rect = box.getBoundingClientRect();
    const n = Math.min(pictures.length - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * pictures.length)));
    if (img.dataset.picture !== String(n)) {
      img.dataset.picture = String(n);
      img.src = pictures[n];
    }
  });
  box.addEventListener("pointerleave", () => {
    img.dataset.picture = String(shown);
    img.src = pictures[shown];
  });
}

/** A card for `product`; `hit` (a search result, or null in the catalogue) gives its scores and matched picture. */
export function renderCard(product, hit, onPick) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  const img = card.querySelector("img");
  const pictures = pictureUrls(product, hit);
  const matched = Math.min(pictures.length - 1, Math.max(0, Number(hit?.matched_image) || 0));
  if (hit?.matched_image_url) pictures[matched] = hit.matched_image_url; // the API's own address of it
  img.src = pictures[matched];
  img.dataset.picture = String(matched);
  img.alt = product.title || `Product ${product.id}`;
  card.dataset.id = product.id;
  card.dataset.matched = String(matched);
  if (pictures.length > 1) {
    const count = document.createElement("span");
    count.className = "card-pictures";
    count.textContent = `${pictures.length} pictures`;
    count.title = matched ? `Picture ${matched + 1} of ${pictures.length} matched; move across it to see the others`
      : `Move across the picture to see the product's ${pictures.length} pictures`;
    card.querySelector(".card-img").append(count);
    browsePictures(card, img, pictures, matched);
  }
  card.querySelector(".card-brand").textContent = product.brand || ""; // no brand: nothing in its place
  card.querySelector(".card-title").textContent = product.title || product.id;
  const price = card.querySelector(".card-price");
  price.textContent = product.price == null ? "" : formatPrice(product.price);
  const badge = card.querySelector(".card-score");
  if (!hit) {
    badge.textContent = "Find lookalikes";
  } else {
    const order = hit.rank_score ?? hit.score; // what the results are ordered by
    badge.textContent = order.toFixed(3);
    const colour = hit.colour_match == null ? "" : `, colour match ${hit.colour_match.toFixed(2)}`;
    badge.title = `Ranking score (orders the results): similarity ${hit.score.toFixed(3)}${colour}`;
    const detail = document.createElement("span");
    detail.className = "card-detail";
    detail.textContent = `similarity ${hit.score.toFixed(3)}`;
    detail.title = "Cosine similarity to the query (1 = identical picture)";
    card.querySelector(".card-body").append(detail);
  }
  if (product.in_stock === false) {
    const stock = document.createElement("span");
    stock.className = "card-stock";
    stock.textContent = "Out of stock";
    card.querySelector(".card-body").append(stock);
  }
  const duplicates = hit?.duplicates || [];
  if (duplicates.length) { // products with the very same picture, shown once (the API's "duplicates")
    const more = document.createElement("span");
    more.className = "card-duplicates";
    more.textContent = `${duplicates.length} more with this picture`;
    more.title = duplicates.join(", ");
    card.querySelector(".card-body").append(more);
  }
  card.setAttribute("aria-label", `${product.title || product.id}. Search for products like this one.`);
  card.addEventListener("click", () => onPick(product, pictures));
  return card;
}

/** Placeholder cards while a grid loads. */
export function skeletons(grid, count) {
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

/** A product's `pictures` (URLs) as thumbnails under the query (a "more like this" search); clicking one shows
 * it as the query picture. Hidden for a product with one picture, and for other searches (no `pictures`). */
export function showProductPictures(pictures = []) {
  const strip = $("#query-pictures");
  strip.hidden = pictures.length < 2;
  strip.replaceChildren(...(strip.hidden ? [] : pictures.map((url, n) => {
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "query-picture";
    thumb.setAttribute("aria-label", `Picture ${n + 1} of ${pictures.length}`);
    thumb.setAttribute("aria-pressed", String(n === 0));
    const img = document.createElement("img");
    img.src = url;
    img.alt = "";
    thumb.append(img);
    thumb.addEventListener("click", () => {
      $("#query-thumb").src = url;
      for (const other of strip.children) other.setAttribute("aria-pressed", String(other === thumb));
    });
    return thumb;
  })));
}
