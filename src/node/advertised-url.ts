// The node's API URL as the router should reach it. A wildcard listen address (0.0.0.0, ::)
// is not an address anyone can dial, so it is replaced by loopback when the router is local and
// by this host's first external IPv4 address otherwise.
import { networkInterfaces } from "node:os";

const WILDCARD = new Set(["0.0.0.0", "::", "[::]", ""]);
const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

export function advertisedUrl(listenHost: string, port: number, routerUrl: string): string {
  let host = listenHost;
  if (WILDCARD.has(listenHost)) {
    const routerHost = new URL(routerUrl).hostname;
    host = LOOPBACK.has(routerHost) ? "127.0.0.1" : (firstExternalIPv4() ?? "127.0.0.1");
  }
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return `http://${host}:${port}`;
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}
