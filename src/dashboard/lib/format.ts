// How numbers, sizes, durations and times read on screen.

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** "2.0 / 23.5 GiB": used and total, the unit said once when they share it. */
export function bytesOf(used: number | null | undefined, total: number | null | undefined): string {
  const a = bytes(used);
  const b = bytes(total);
  const unitA = a.split(" ")[1];
  return unitA && unitA === b.split(" ")[1] ? `${a.split(" ")[0]} / ${b}` : `${a} / ${b}`;
}

export function percent(fraction: number | null | undefined, digits = 0): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`;
  return duration(n);
}

/** 3d 4h, 2h 5m, 4m 10s, 12s. */
export function duration(n: number): string {
  const s = Math.max(0, Math.floor(n / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** "5s ago", "3m ago"; "just now" under a second. */
export function ago(epochMs: number, now = Date.now()): string {
  const d = now - epochMs;
  if (d < 1000) return "just now";
  return `${duration(d)} ago`;
}

export function dateTime(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (v: number, w = 2) => String(v).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function time(epochMs: number): string {
  return dateTime(epochMs).slice(11);
}

export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return n.toLocaleString("en-US");
}

/** An ISO string or epoch ms as epoch ms. */
export function epoch(v: string | number | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const t = typeof v === "number" ? v : Date.parse(v);
  return Number.isFinite(t) ? t : null;
}
