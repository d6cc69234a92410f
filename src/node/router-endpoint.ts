// How the node addresses the router: base URL joining and the node-token header.

export class RouterEndpoint {
  private readonly base: string;

  constructor(
    routerUrl: string,
    private readonly nodeToken?: string,
  ) {
    const parsed = new URL(routerUrl);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`router URL must be http(s): ${routerUrl}`);
    this.base = parsed.toString().replace(/\/+$/, "");
  }

  get url(): string {
    return this.base;
  }

  /** `path` starts with "/" (see FLEET_PATHS). */
  resolve(path: string): string {
    return `${this.base}${path}`;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.nodeToken ? { ...extra, authorization: `Bearer ${this.nodeToken}` } : { ...extra };
  }
}
