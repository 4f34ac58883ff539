// lookalike web page: the kind chips under the query picture ("Looks like: Dresses · Skirts · Tops").
//
// A search's response names the kinds (the catalogue's article types) its picture looks like, likeliest first
// (`kind.seen`), and the kind its results are ranked by (`kind.used`: detected in the picture, or chosen).
// A chip ranks by its kind instead: the query's `kind`, sent as the API's `kind` and kept in the address
// (kind=…, urlstate.js). Like a colour chip it is a preference, not a filter (that is the Article type filter):
// the chosen kind comes first, the others follow. The chosen chip again, the detected one, or the reset goes
// back to the kind detected. A new search (another photo, a product's "more like this") starts with none.

const $ = (selector) => document.querySelector(selector);
let current = null; // the query whose kinds the chips show
let shown = null; // what the results on screen were ranked with: {query, kind, answer}
const answers = new WeakMap(); // query -> the response's kind object of its last search

/** The kind field of a search for `query`: {kind} when one was chosen, or nothing. */
export function kindRequest(query) {
  return query?.kind ? { kind: query.kind } : {};
}

const same = (a, b) => Boolean(a && b) && a.toLowerCase() === b.toLowerCase();
const percent = (p) => `${Math.round(p * 100)}%`;

/** The kind seen in the query picture (what the results are ranked by when none is chosen), or null. */
function detected(answer) {
  return answer.seen?.[0]?.kind || null;
}

function buildChips(answer) {
  const seen = [...(answer.seen || [])];
  // a chosen kind the picture did not look like (or no picture): a chip of its own, to show and take back
  if (answer.source === "chosen" && answer.used && !seen.some((s) => same(s.kind, answer.used))) {
    seen.push({ kind: answer.used, probability: null });
  }
  const group = $("#kind-chips");
  group.replaceChildren(...seen.map(({ kind, probability }) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip kind-chip";
    chip.dataset.kind = kind;
    const name = document.createElement("span");
    name.className = "chip-name";
    name.textContent = kind;
    chip.append(name);
    if (probability !== null && probability !== undefined) {
      const odds = document.createElement("span");
      odds.className = "kind-odds";
      odds.textContent = percent(probability);
      chip.append(odds);
      chip.dataset.probability = String(probability);
    }
    return chip;
  }));
}

function paint(used) {
  // Mark the chip the results are (or are about to be) ranked by; say where that kind came from.
  const seen = detected(answers.get(current) || {});
  for (const chip of $("#kind-chips").querySelectorAll(".kind-chip")) {
    const kind = chip.dataset.kind;
    const on = same(kind, used);
    const odds = chip.dataset.probability ? `, ${percent(Number(chip.dataset.probability))} likely` : "";
    chip.setAttribute("aria-pressed", String(on));
    chip.classList.toggle("is-used", on);
    chip.classList.toggle("is-seen", same(kind, seen));
    const back = seen ? "the kind seen" : "any kind";
    chip.title = on && current.kind ? `Ranked for ${kind}, your choice: click for ${back} again`
      : on ? `Ranked for ${kind}, the kind seen${odds}` : `Rank ${kind} first${odds}`;
  }
  const status = $("#kind-status");
  if (!used) status.textContent = "Pick one to rank by";
  else if (current.kind) status.textContent = `Ranked for ${used}${seen && !same(seen, used) ? ` (seen: ${seen})` : ""}`;
  else status.textContent = `Ranked for ${used}, the kind seen`;
  const reset = $("#kind-reset");
  reset.hidden = !current.kind;
  reset.textContent = seen ? "× Back to the kind seen" : "× Any kind";
  reset.setAttribute("aria-label", reset.textContent.slice(2)); // not "times"
}

/** Show the chips for `query` after a search answered with `kind` (the response's kind object). */
export function showKinds(query, kind) {
  const answer = kind || {};
  answers.set(query, answer);
  current = query;
  shown = { query, kind: query.kind || null, answer };
  const chosen = Boolean(query.kind) || answer.source === "chosen";
  if (!answer.seen?.length && !chosen) {
    $("#kind-bar").hidden = true;
    return;
  }
  $("#kind-bar-title").textContent = answer.seen?.length ? "Looks like" : "Kind";
  buildChips(answer);
  paint(answer.used || null);
  $("#kind-bar").hidden = false;
}

/** After a failed search: the chips as the results on screen were ranked (or none). */
export function restoreKinds() {
  if (!shown) return;
  shown.query.kind = shown.kind;
  showKinds(shown.query, shown.answer);
}

export function hideKinds() {
  current = null;
  $("#kind-bar").hidden = true;
}

/** Wire the chips and the reset; `rerun(query)` searches again with the new kind (a history entry of its own). */
export function wireKinds(rerun) {
  const choose = (kind) => {
    if (!current || (kind || null) === (current.kind || null)) return;
    current.kind = kind;
    paint(kind || detected(answers.get(current) || {}));
    rerun(current);
  };
  $("#kind-chips").addEventListener("click", (event) => {
    const chip = event.target.closest(".kind-chip");
    if (!chip || !current) return;
    const kind = chip.dataset.kind;
    const answer = answers.get(current) || {};
    // the chosen kind again (as the address spelt it, or as the catalogue does), or the one seen: back to it
    const again = same(kind, current.kind) || (answer.source === "chosen" && same(kind, answer.used));
    if (current.kind && (again || same(kind, detected(answer)))) choose(null);
    else if (!current.kind && same(kind, answer.used)) return; // already ranked by it
    else choose(kind);
  });
  $("#kind-reset").addEventListener("click", () => choose(null));
}
