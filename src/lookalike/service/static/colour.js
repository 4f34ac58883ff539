// lookalike web page: the colour chips under the query picture ("this, but in red") and the "match colour"
// toggle. A chip is a colour preference, not a filter: the results are re-ranked by it, other colours follow.

const $ = (selector) => document.querySelector(selector);
let current = null; // the query whose colours the chips show
let shown = null; // what the results on screen were ranked with: {query, prefer, rank, colour}

/** The colour fields of a search for `query`: {[key]: preference}, {colour_rank: false}, or nothing. */
export function colourRequest(query, key = "colour") {
  if (!$("#colour-rank").checked) return { colour_rank: false };
  return query.prefer ? { [key]: query.prefer } : {};
}

function buildChips(families) {
  const group = $("#colour-chips");
  if (group.dataset.families === families.join(",")) return;
  group.replaceChildren();
  for (const family of families) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.dataset.family = family;
    const swatch = document.createElement("span");
    swatch.className = "swatch"; // its colour comes from the chip's data-family (style.css)
    swatch.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "chip-name";
    name.textContent = family;
    const tag = document.createElement("span");
    tag.className = "chip-tag";
    chip.append(swatch, name, tag);
    group.append(chip);
  }
  group.dataset.families = families.join(",");
}

function paint(ranked) {
  // Mark the chips: the colour seen in the query picture (or the product's own), the colour named in the
  // query's words, and the one ranked for.
  const rank = $("#colour-rank").checked;
  for (const chip of $("#colour-chips").querySelectorAll(".chip")) {
    const family = chip.dataset.family;
    const seen = family === current.seen;
    const named = family === current.named;
    chip.setAttribute("aria-pressed", String(rank && family === ranked));
    chip.classList.toggle("is-seen", seen);
    chip.querySelector(".chip-tag").textContent = named ? "words" : seen ? "seen" : "";
    chip.disabled = !rank;
    chip.title = named ? `Rank by ${family}, the colour in your words`
      : seen ? `Rank by ${family}, the colour seen in the picture` : `Rank ${family} products first`;
  }
  const status = $("#colour-status");
  const words = current.named && !current.prefer ? current.named : null; // the words' colour, not overridden
  $("#colour-reset").textContent = current.named ? "Back to the colour in your words" : "Back to the colour seen";
  if (!rank) status.textContent = "Colour matching is off";
  else if (!ranked) status.textContent = `No colour ${current.type === "text" ? "named" : "seen"}: pick one to rank by`;
  else if (ranked === words) status.textContent = `Ranked for: ${ranked} (from your words)`;
  else if (ranked === current.seen) status.textContent = `Ranked for ${ranked}, the colour seen`;
  else status.textContent = `Ranked for ${ranked}${current.seen ? ` (seen: ${current.seen})` : ""}`;
  $("#colour-reset").hidden = !rank || !current.prefer;
}

/** Show the chips for `query` after a search answered with `colour` (the response's colour object). */
export function showColours(query, colour) {
  const seen = colour.detected || (colour.source === "product" ? colour.ranked_by : null);
  if (seen) query.seen = seen; // a product search with a preference says nothing of the product's own colour
  // the colour the words name, remembered while a chip's preference overrides it
  if (colour.source === "words") query.named = colour.ranked_by;
  else if (!query.prefer) query.named = null;
  current = query;
  shown = { query, prefer: query.prefer || null, rank: $("#colour-rank").checked, colour };
  buildChips(colour.families || []);
  paint(colour.ranked_by);
  $("#colour-bar").hidden = false;
}

/** After a failed search: the chips and toggle as the results on screen were ranked (or none). */
export function restoreColours() {
  if (!shown) return;
  shown.query.prefer = shown.prefer;
  $("#colour-rank").checked = shown.rank;
  showColours(shown.query, shown.colour);
}

export function hideColours() {
  current = null;
  $("#colour-bar").hidden = true;
}

/** Wire the chips, the reset and the toggle; `rerun(query)` searches again with the new colour. */
export function wireColours(rerun) {
  const prefer = (family) => {
    if (!current || family === (current.prefer || null)) return;
    current.prefer = family;
    paint(family || current.named || current.seen || null);
    rerun(current);
  };
  $("#colour-chips").addEventListener("click", (event) => {
    const chip = event.target.closest(".chip");
    if (!chip || chip.disabled || !current) return;
    const family = chip.dataset.family;
    // the seen colour, or the preference again: back to the colour seen
    const back = family === current.prefer || family === (current.named || current.seen);
    prefer(back ? null : family);
  });
  $("#colour-reset").addEventListener("click", () => prefer(null));
  $("#colour-rank").addEventListener("change", () => {
    if (!current) return;
    paint($("#colour-rank").checked ? current.prefer || current.named || current.seen || null : null);
    rerun(current);
  });
}
