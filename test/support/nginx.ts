// A throwaway nginx for tests: Debian's nginx as a round-robin load balancer in front of routers,
// on a free port, with a generated config in a temp directory. `.ci/run` installs the package.
// Each answer carries X-Upstream ($upstream_addr: the routers nginx tried, the last one answered).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestNginx {
  url: string;
  /** The error log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** The nginx binary, or null with the reason it is missing. */
export function findNginx(): { bin: string; reason?: undefined } | { bin: null; reason: string } {
  for (const bin of [process.env.DROVER_TEST_NGINX, "/usr/sbin/nginx"]) if (bin && existsSync(bin)) return { bin };
  const which = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return { bin: which.stdout.trim() };
  return { bin: null, reason: "nginx is not installed (run `apt-get install -y nginx`, as .ci/run does)" };
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

/** Starts nginx balancing round-robin over `upstreams` (http://host:port URLs); resolves once it answers. */
export async function startNginx(upstreams: string[]): Promise<TestNginx> {
  const found = findNginx();
  if (!found.bin) throw new Error(found.reason);
  const dir = mkdtempSync(join(tmpdir(), "drover-nginx-"));
  const port = await freePort();
  const servers = upstreams.map((u) => `    server ${new URL(u).host} max_fails=1 fail_timeout=10s;`).join("\n");
  const conf = `
${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream drover_routers {
${servers}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://drover_routers;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_read_timeout 600s;
      # The default: a request is passed to the next router only if it was not sent (a refused
      # connection), never re-sent after a router took it.
      proxy_next_upstream error timeout;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const child: ChildProcess = spawn(found.bin, ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const log = () => out + (existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : "");
  process.once("exit", () => child.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}):\n${log()}`);
    const up = await fetch(`${url}/healthz`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not answer within 15 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGQUIT");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
