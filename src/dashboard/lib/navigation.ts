// Pages are paths under /dashboard/ (the router answers any of them with the app), switched
// with the History API. Only the page is in the URL: never an open dialog.
import { useEffect, useState } from "preact/hooks";

export type Page = "fleet" | "requests" | "keys" | "users";
export const PAGES: Page[] = ["fleet", "requests", "keys", "users"];

const BASE = "/dashboard/";

export function currentPage(): Page {
  const rest = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length).replace(/\/.*$/, "") : "";
  return (PAGES as string[]).includes(rest) ? (rest as Page) : "fleet";
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => {
  for (const l of listeners) l();
});

export function navigate(page: Page): void {
  const path = page === "fleet" ? BASE : `${BASE}${page}`;
  if (window.location.pathname !== path) window.history.pushState(null, "", path);
  for (const l of listeners) l();
}

export function usePage(): Page {
  const [page, setPage] = useState(currentPage);
  useEffect(() => {
    const l = () => setPage(currentPage());
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return page;
}

export function hrefOf(page: Page): string {
  return page === "fleet" ? BASE : `${BASE}${page}`;
}
