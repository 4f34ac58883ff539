// lookalike web page: HTTP to the API, and its errors as sentences for people.

const controllers = {}; // one in-flight request per kind; a new one aborts the old

export class ApiError extends Error {}

export function abort(kind) {
  controllers[kind]?.abort();
}

export async function api(kind, path, options = {}) {
  controllers[kind]?.abort();
  const controller = new AbortController();
  controllers[kind] = controller;
  let response;
  try {
    response = await fetch(path, { ...options, signal: controller.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Cannot reach the server. Check your connection and try again.");
  }
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : null;
    throw new ApiError(friendlyError(response.status, detail));
  }
  return body;
}

function friendlyError(status, detail) {
  if (detail) detail = detail.replace(/^image: /, ""); // the upload's placeholder name adds nothing
  if (status === 422 && detail?.startsWith("text: ")) return `Please check the words: ${detail.slice(6)}`;
  if (detail?.startsWith("the catalogue has no kind")) return `Cannot rank by that kind: ${detail}`; // 400 (422)
  const prefix = {
    400: "That image could not be used",
    404: "Not found",
    413: "That image is too large",
    415: "That file type is not supported",
    422: "Please check the search",
    504: "The image URL took too long to answer",
  }[status];
  if (detail && prefix) return `${prefix}: ${detail}`;
  if (detail) return detail;
  return prefix ? `${prefix}.` : `Something went wrong (HTTP ${status}). Please try again.`;
}
