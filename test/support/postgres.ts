// A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp directory on a free port,
// run as the `postgres` OS user when we are root (initdb refuses root). `.ci/run` installs
// Debian's postgresql package; the binaries are found under /usr/lib/postgresql/*/bin.
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface TestPostgres {
  /** postgres:// URL of the `postgres` maintenance database. */
  adminUrl: string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Stops the server (`-m fast`: clients are cut off; committed data is kept, which an immediate
   * stop would not guarantee with this server's synchronous_commit=off); `resume()` starts it again.
   */
  halt(): void;
  /** Starts a halted server again on the same port and data. */
  resume(): void;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const fromEnv = process.env.DROVER_TEST_PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0]) return join(base, versions[0], "bin");
  const which = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return join(which.stdout.trim(), "..");
  throw new Error("PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin): run `apt-get install -y postgresql`, as .ci/run does");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary as the postgres user when we are root. */
function pgRun(bin: string, args: string[]): string {
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  try {
    return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(" ")} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

let counter = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const bin = findBinDir();
  const dir = mkdtempSync(join(tmpdir(), "drover-pg-"));
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  const dataDir = join(dir, "data");
  const port = await freePort();
  pgRun(join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]);
  // Durability is pointless for a test server; fsync off makes it start and write fast.
  const serverOpts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  let running = false;
  const start = () => {
    pgRun(join(bin, "pg_ctl"), ["-D", dataDir, "-l", join(dir, "server.log"), "-o", serverOpts, "-w", "-t", "60", "start"]);
    running = true;
  };
  start();

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (running) pgRun(join(bin, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once("exit", () => {
    if (!stopped && running)
      spawnSync(
        asRoot ? "runuser" : join(bin, "pg_ctl"),
        asRoot ? ["-u", "postgres", "--", join(bin, "pg_ctl"), "-D", dataDir, "-m", "immediate", "stop"] : ["-D", dataDir, "-m", "immediate", "stop"],
      );
  });

  return {
    adminUrl,
    async createDatabase(name = `drover_test_${process.pid}_${++counter}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    halt() {
      pgRun(join(bin, "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "stop"]);
      running = false;
    },
    resume() {
      start();
    },
    stop,
  };
}
