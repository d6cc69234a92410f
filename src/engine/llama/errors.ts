// Errors the engine answers with a 400 (the client must fix the request).

/** A request the client must fix (prompt too long, empty input...): answered with a 400. */
export class InvalidRequestError extends Error {
  constructor(
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = "InvalidRequestError";
  }
}
