// Password hashing with scrypt from node's crypto (memory-hard, no extra dependency). The
// parameters travel inside each hash, so they can be raised later without breaking old hashes.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

const N = 1 << 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** 128·N·r bytes plus slack: scrypt refuses to run when its memory need exceeds maxmem. */
const maxmemFor = (n: number, r: number) => 128 * n * r + 16 * 1024 * 1024;

/** `scrypt$N$r$p$salt$hash` (salt and hash in base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH, { N, r: R, p: P, maxmem: maxmemFor(N, R) });
  return ["scrypt", N, R, P, salt.toString("base64url"), key.toString("base64url")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, "base64url");
  const expected = Buffer.from(parts[5]!, "base64url");
  const actual = await scryptAsync(password, salt, expected.length, { N: n, r, p, maxmem: maxmemFor(n, r) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password an operator can type: 20 random base64url characters (120 bits). */
export function generatePassword(): string {
  return randomBytes(15).toString("base64url");
}
