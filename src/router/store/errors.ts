// Recognises constraint violations from either database driver.

/** A UNIQUE (or primary key) constraint refused the row: SQLite's SQLITE_CONSTRAINT_*, PostgreSQL's 23505. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}
