// One record per inference request, published when it ends (answered, refused or abandoned).
// History, metrics and the request log subscribe; the request path only emits.
import type { RequestRecord } from "../../protocol/request-record.js";

export type RequestRecordListener = (record: RequestRecord) => void;

export class RequestEvents {
  private listeners: RequestRecordListener[] = [];

  onFinished(listener: RequestRecordListener): void {
    this.listeners.push(listener);
  }

  /** Listeners run synchronously and must not throw into the request path. */
  emitFinished(record: RequestRecord): void {
    for (const l of this.listeners) {
      try {
        l(record);
      } catch {
        // a broken listener must never fail a request
      }
    }
  }
}
