// A free loopback port for engines that must be told their port up front (ollama, command):
// bind port 0, read the port the OS picked, release it. Another process could take it in
// between; the engine then fails to bind, exits, and its restart picks a new port.
import { createServer } from "node:net";

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("could not pick a free port"))));
    });
  });
}
