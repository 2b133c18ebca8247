// The API key and namespace live in sessionStorage only: gone when the tab closes,
// never in a URL, a cookie or local storage.

const STORAGE_KEY = "execgate.viewer.session";

export function loadSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    if (value && typeof value.apiKey === "string" && typeof value.namespace === "string") {
      return { apiKey: value.apiKey, namespace: value.namespace };
    }
  } catch {
    // Unreadable or blocked storage: treated as signed out.
  }
  return null;
}

export function saveSession(apiKey, namespace) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ apiKey, namespace }));
}

export function clearSession() {
  sessionStorage.removeItem(STORAGE_KEY);
}
