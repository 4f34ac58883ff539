// lookalike web page: steer the results — like / dislike on each result card ("more like these, less like those").
//
// A query carries `liked` and `disliked` (product ids). Each judgement is a search of its own: a new query
// object (so Back shows the page before it), its own address (like=ID&unlike=ID, repeated: a link reproduces the
// page), sent as the API's positive / negative (with ignore_missing: a product deleted since the page was shown
// is left out and named in the response's "ignored"). The judged products are chips above the results; × takes
// a judgement back. The buttons are real buttons beside each card (Tab, Enter or Space; large enough to tap).

const $ = (selector) => document.querySelector(selector);
const names = new Map(); // product id -> its title, for the chips
let current = null; // the query whose results carry the buttons
let rerun = null; // (query) => search it, as a new history entry
let refocus = null; // {id, verdict} of the button pressed: focused again on the new page (keyboard users)

const liked = (query) => query?.liked || [];
const disliked = (query) => query?.disliked || [];

/** `request` (the fetch options of POST /api/search) with `query`'s judgements: JSON fields, or repeated
 * multipart fields for a photo. Unchanged when nothing is judged (a plain search). */
export function withFeedback(request, query) {
  if (!liked(query).length && !disliked(query).length) return request;
  if (request.body instanceof FormData) {
    for (const id of liked(query)) request.body.append("positive", id);
    for (const id of disliked(query)) request.body.append("negative", id);
    request.body.append("ignore_missing", "true");
    return request;
  }
  const body = { ...JSON.parse(request.body), positive: liked(query), negative: disliked(query), ignore_missing: true };
  return { ...request, body: JSON.stringify(body) };
}

/** Add `query`'s judgements to the address `params` (like=ID&unlike=ID). */
export function feedbackParams(query, params) {
  for (const id of liked(query)) params.append("like", id);
  for (const id of disliked(query)) params.append("unlike", id);
  return params;
}

/** The judgements an address names: {liked, disliked}, or {} when none. */
export function readFeedback(params) {
  const out = { liked: params.getAll("like").filter(Boolean), disliked: params.getAll("unlike").filter(Boolean) };
  out.disliked = out.disliked.filter((id) => !out.liked.includes(id));
  return out.liked.length || out.disliked.length ? out : {};
}

/** `query` judged anew: `id` liked ("like"), disliked ("dislike") or neither (null), as a new query object. */
function judged(query, id, verdict) {
  const next = { ...query, liked: liked(query).filter((x) => x !== id), disliked: disliked(query).filter((x) => x !== id) };
  if (verdict === "like") next.liked.push(id);
  if (verdict === "dislike") next.disliked.push(id);
  delete next.entry;
  return next;
}

function judgeButton(verdict, id, title, pressed) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `judge-btn judge-${verdict}`;
  button.dataset.verdict = verdict;
  button.dataset.id = id;
  button.setAttribute("aria-pressed", String(pressed));
  const word = verdict === "like" ? "More like" : "Less like";
  button.setAttribute("aria-label", `${pressed ? "Undo: " : ""}${word} ${title}`);
  button.title = pressed ? "Take back" : verdict === "like" ? "More like this" : "Less like this";
  button.innerHTML = verdict === "like"
    ? '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 10v10H4V10zm2 10h8.5a2 2 0 0 0 2-1.6l1.3-6.4A2 2 0 0 0 18.8 9.6H14l.8-4a1.7 1.7 0 0 0-3.1-1.2L9 9z"/></svg>'
    : '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M17 14V4h3v10zm-2-10H6.5a2 2 0 0 0-2 1.6L3.2 12a2 2 0 0 0 2 2.4H10l-.8 4a1.7 1.7 0 0 0 3.1 1.2L15 15z"/></svg>';
  return button;
}

/** Put like / dislike buttons beside each result card of `grid` (the results of `query`, from `hits`). */
export function decorateCards(grid, query, hits) {
  current = query;
  for (const hit of hits) names.set(hit.id, hit.product?.title || hit.id);
  for (const card of [...grid.querySelectorAll(":scope > .card[data-id]")]) {
    const id = card.dataset.id;
    const title = names.get(id) || id;
    const wrap = document.createElement("div");
    wrap.className = "card-wrap";
    wrap.dataset.id = id;
    const state = liked(query).includes(id) ? "liked" : disliked(query).includes(id) ? "disliked" : "";
    if (state) wrap.dataset.judged = state;
    const bar = document.createElement("div");
    bar.className = "judge";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", `Steer the results with ${title}`);
    bar.append(judgeButton("like", id, title, state === "liked"), judgeButton("dislike", id, title, state === "disliked"));
    card.replaceWith(wrap);
    wrap.append(card, bar);
  }
  showJudged(query);
  if (refocus) {
    const again = grid.querySelector(`.judge-btn[data-verdict="${refocus.verdict}"][data-id="${CSS.escape(refocus.id)}"]`);
    (again || grid.querySelector(".judge-btn"))?.focus({ preventScroll: true });
    refocus = null;
  }
}

function chip(id, verdict) {
  const item = document.createElement("button");
  item.type = "button";
  item.className = `judged-chip is-${verdict}`;
  item.dataset.id = id;
  const title = names.get(id) || id;
  item.setAttribute("aria-label", `Remove ${title} from the ${verdict} products`);
  const img = document.createElement("img");
  img.src = `/api/products/${encodeURIComponent(id)}/image`;
  img.alt = "";
  const name = document.createElement("span");
  name.className = "judged-name";
  name.textContent = title;
  const x = document.createElement("span");
  x.className = "judged-x";
  x.setAttribute("aria-hidden", "true");
  x.textContent = "×";
  item.append(img, name, x);
  if (!names.has(id)) { // a link's judgements: their titles come from the catalogue
    fetch(`/api/products/${encodeURIComponent(id)}`).then((r) => (r.ok ? r.json() : null)).then((product) => {
      if (!product?.title) return;
      names.set(id, product.title);
      name.textContent = product.title;
      item.setAttribute("aria-label", `Remove ${product.title} from the ${verdict} products`);
    }).catch(() => {});
  }
  return item;
}

/** The liked and disliked products of `query` as removable chips above the results (hidden when none). */
export function showJudged(query, note = "") {
  const box = $("#judged");
  if (!box) return;
  const groups = [["liked", liked(query)], ["disliked", disliked(query)]].filter(([, ids]) => ids.length);
  box.hidden = !groups.length && !note;
  const rows = groups.map(([verdict, ids]) => {
    const row = document.createElement("div");
    row.className = "judged-row";
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", verdict === "liked" ? "More like these" : "Less like these");
    const label = document.createElement("span");
    label.className = "judged-label";
    label.textContent = verdict === "liked" ? "More like" : "Less like";
    row.append(label, ...ids.map((id) => chip(id, verdict)));
    return row;
  });
  const tail = document.createElement("div");
  tail.className = "judged-tail";
  if (groups.length) {
    const clear = document.createElement("button");
    clear.type = "button";
    clear.className = "btn btn-link judged-clear";
    clear.textContent = "Clear likes and dislikes";
    tail.append(clear);
  }
  if (note) {
    const p = document.createElement("span");
    p.className = "judged-note";
    p.textContent = note;
    tail.append(p);
  }
  box.replaceChildren(...rows, tail);
}

/** The judged ids the API left out (`ignored`: no product has them now): dropped from `query`, and said. */
export function noteIgnored(query, ignored = []) {
  if (!ignored?.length) return;
  query.liked = liked(query).filter((id) => !ignored.includes(id));
  query.disliked = disliked(query).filter((id) => !ignored.includes(id));
  const n = ignored.length;
  showJudged(query, `${n} judged product${n === 1 ? " is" : "s are"} no longer in the catalogue and ${n === 1 ? "was" : "were"} left out.`);
}

export function hideJudged() {
  current = null;
  const box = $("#judged");
  if (box) box.hidden = true;
}

/** Wire the buttons and chips; `search(query)` runs a query with new judgements (a history entry of its own). */
export function wireFeedback(search) {
  rerun = search;
  $("#results").addEventListener("click", (event) => {
    const button = event.target.closest(".judge-btn");
    if (!button || !current) return;
    const { id, verdict } = button.dataset;
    const pressed = button.getAttribute("aria-pressed") === "true";
    if (button === document.activeElement && event.detail === 0) refocus = { id, verdict }; // from the keyboard
    rerun(judged(current, id, pressed ? null : verdict));
  });
  $("#judged")?.addEventListener("click", (event) => {
    if (!current) return;
    if (event.target.closest(".judged-clear")) {
      rerun({ ...judged(current, "", null), liked: [], disliked: [] });
      return;
    }
    const item = event.target.closest(".judged-chip");
    if (item) rerun(judged(current, item.dataset.id, null));
  });
}
