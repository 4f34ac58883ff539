// lookalike web page: the ways a picture comes in: the file and camera inputs, the drop zone, a drop or a paste
// anywhere on the page (a photo, or an image dragged from another page: its URL), and the URL box.

const $ = (selector) => document.querySelector(selector);

function imageFromTransfer(transfer) {
  for (const file of transfer.files || []) if (file.type.startsWith("image/") || !file.type) return file;
  for (const item of transfer.items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return null;
}

function urlFromTransfer(transfer) {
  const list = transfer.getData("text/uri-list") || transfer.getData("text/plain") || "";
  const first = list.split(/\r?\n/).find((line) => line && !line.startsWith("#")) || "";
  return /^https?:\/\//i.test(first.trim()) ? first.trim() : null;
}

/** Wire the photo inputs, the drop zone, drops and pastes anywhere on the page, and the URL box: a photo goes to
 * `searchFile(file)`, an image URL to `searchUrl(url)`; `showError(message)` says what could not be used. */
export function wireInputs({ searchFile, searchUrl, showError }) {
  for (const id of ["#file-input", "#camera-input"]) {
    const input = $(id);
    input.addEventListener("change", () => {
      searchFile(input.files[0]);
      input.value = ""; // choosing the same file again searches again
    });
  }
  const dropzone = $("#dropzone");
  dropzone.addEventListener("click", (event) => {
    if (!event.target.closest("label, input")) $("#file-input").click();
  });
  dropzone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("#file-input").click();
    }
  });

  // The whole window takes drops, so a photo dropped beside the box is never opened by the browser.
  let depth = 0;
  const overlay = $("#drop-overlay");
  const isDrag = (event) => [...(event.dataTransfer?.types || [])].some((t) => t === "Files" || t === "text/uri-list");
  window.addEventListener("dragenter", (event) => {
    if (!isDrag(event)) return;
    depth += 1;
    overlay.hidden = false;
    dropzone.classList.add("is-over");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) {
      overlay.hidden = true;
      dropzone.classList.remove("is-over");
    }
  });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    dropzone.classList.remove("is-over");
    const file = imageFromTransfer(event.dataTransfer);
    if (file) return searchFile(file);
    const url = urlFromTransfer(event.dataTransfer);
    if (url) {
      $("#url-input").value = url;
      return searchUrl(url);
    }
    showError("Drop an image file, or an image dragged from another page.");
  });

  document.addEventListener("paste", (event) => {
    const transfer = event.clipboardData;
    if (!transfer) return;
    const file = imageFromTransfer(transfer);
    if (file) {
      event.preventDefault();
      searchFile(file);
      return;
    }
    const text = (transfer.getData("text/plain") || "").trim();
    const inField = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    const urlInput = $("#url-input");
    if (/^https?:\/\/\S+$/i.test(text) && (!inField || (event.target === urlInput && !urlInput.value))) {
      event.preventDefault();
      urlInput.value = text;
      searchUrl(text);
    }
  });

  $("#url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchUrl($("#url-input").value);
  });
}
