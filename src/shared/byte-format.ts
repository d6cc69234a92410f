// Human-readable byte counts for log lines and reasons ("16.0 GB", "1.2 MB/s").

const UNITS = ["B", "kB", "MB", "GB", "TB"] as const;

/** Decimal units, as disk and catalog sizes are quoted. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}
