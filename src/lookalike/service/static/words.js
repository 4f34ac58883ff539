// lookalike web page: the words box. Words alone search by words; with a photo or product on screen (shown
// beside the box, removable) or a URL in the URL box, the words move that picture's search ("in red").

const $ = (selector) => document.querySelector(selector);
let picture = null; // the photo or product the words go with, or null

/** The words in the box as one line (runs of spaces and line breaks as one space), or "". */
export function currentWords() {
  return $("#text-input").value.replace(/\s+/g, " ").trim();
}

export function setWords(text) {
  $("#text-input").value = text || "";
}

/** The picture the words go with: {type: "image", file, preview} | {type: "product", ...} | null. */
export function attached() {
  return picture;
}

/** Show `next` (a picture, or null) as what the words go with. */
export function setAttached(next) {
  picture = next;
  const chip = $("#attach");
  chip.hidden = !picture;
  if (!picture) {
    $("#attach-thumb").removeAttribute("src");
    return;
  }
  const thumb = $("#attach-thumb");
  thumb.hidden = false;
  thumb.src = picture.type === "image" ? picture.preview : picture.image;
  const name = picture.type === "image" ? picture.file.name || "your photo" : picture.title;
  $("#attach-name").textContent = name;
  chip.title = `The words go with ${name}`;
}

/** Wire the box: Enter or the Search button calls `search()`; × lets the picture go (words alone). */
export function wireWords(search) {
  const input = $("#text-input");
  $("#text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) { // one line: Enter searches
      event.preventDefault();
      $("#text-form").requestSubmit();
    }
  });
  $("#attach-remove").addEventListener("click", () => {
    setAttached(null);
    input.focus();
  });
  $("#attach-thumb").addEventListener("error", (event) => { event.target.hidden = true; });
}
