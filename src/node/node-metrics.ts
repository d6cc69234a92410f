// The node's Prometheus metrics (GET /metrics): requests it forwarded to its engines, per-model
// engine state, slots, in-flight, restarts and download progress, host CPU/memory/GPU, and the
// process's own metrics. A Registry of its own, so `drover up` (router and node in one process)
// exposes two separate sets.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ModelState, type NodeMetrics } from "../protocol/node-api.js";
import type { ModelStatusBoard } from "./model-status-board.js";

export interface NodeMetricsDeps {
  board: ModelStatusBoard;
  /** Host metrics now (CPU since the previous scrape). */
  system: () => NodeMetrics;
}

export interface ForwardedRequest {
  endpoint: string;
  /** A catalog model id, or "unknown" (labels must not take arbitrary client input). */
  model: string;
  status: number;
  durationMs: number;
}

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class NodeMetricsExporter {
  readonly registry = new Registry();
  private readonly requests: Counter<"endpoint" | "model" | "status">;
  private readonly duration: Histogram<"endpoint" | "model">;

  constructor(deps: NodeMetricsDeps) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "drover_node_requests_total",
      help: "Inference requests this node answered, by endpoint, model and HTTP status",
      labelNames: ["endpoint", "model", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "drover_node_request_duration_seconds",
      help: "Time from request to the end of the response on this node",
      labelNames: ["endpoint", "model"],
      buckets: DURATION_BUCKETS,
      registers,
    });

    const perModel = (name: string, help: string, value: (s: ReturnType<ModelStatusBoard["list"]>[number]) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["model"],
        registers,
        collect() {
          this.reset();
          for (const s of deps.board.list()) {
            const v = value(s);
            if (v !== undefined) this.set({ model: s.id }, v);
          }
        },
      });
    new Gauge({
      name: "drover_model_state",
      help: "Per-model engine state on this node: 1 for the current state, 0 for the others",
      labelNames: ["model", "state"],
      registers,
      collect() {
        this.reset();
        for (const s of deps.board.list()) for (const state of ModelState.options) this.set({ model: s.id, state }, s.state === state ? 1 : 0);
      },
    });
    perModel("drover_model_in_flight", "Requests being answered by the model's engine", (s) => s.inFlight);
    perModel("drover_model_slots", "Concurrent requests the model's engine accepts", (s) => s.slots);
    perModel("drover_engine_restarts", "Restarts of the model's engine since the node started", (s) => s.restarts);
    perModel("drover_model_download_bytes", "Bytes of the model file downloaded so far (while downloading)", (s) => s.bytesDone);
    perModel("drover_model_download_size_bytes", "Size of the model file being downloaded", (s) => s.bytesTotal);

    // One host sample per scrape, shared by the host and GPU gauges below.
    let sample: NodeMetrics = {};
    let sampledAt = 0;
    const current = () => {
      if (Date.now() - sampledAt > 1000) {
        sample = deps.system();
        sampledAt = Date.now();
      }
      return sample;
    };
    const host = (name: string, help: string, value: (m: NodeMetrics) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const v = value(current());
          if (v !== undefined) this.set(v);
        },
      });
    host("drover_cpu_percent", "Host CPU use since the previous scrape, all cores (0-100)", (m) => m.cpuPercent);
    host("drover_memory_used_bytes", "Host memory in use", (m) => m.memoryUsedBytes);
    host("drover_memory_total_bytes", "Host memory", (m) => m.memoryTotalBytes);
    const gpu = (name: string, help: string, value: (g: NonNullable<NodeMetrics["gpus"]>[number]) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["gpu", "name"],
        registers,
        collect() {
          this.reset();
          for (const g of current().gpus ?? []) {
            const v = value(g);
            if (v !== undefined) this.set({ gpu: String(g.index), name: g.name }, v);
          }
        },
      });
    gpu("drover_gpu_utilization_percent", "GPU utilisation (nvidia-smi)", (g) => g.utilizationPercent);
    gpu("drover_gpu_memory_used_bytes", "GPU memory in use (nvidia-smi)", (g) => g.memoryUsedBytes);
    gpu("drover_gpu_memory_total_bytes", "GPU memory (nvidia-smi)", (g) => g.memoryTotalBytes);
    gpu("drover_gpu_temperature_celsius", "GPU temperature (nvidia-smi)", (g) => g.temperatureC);
  }

  observeRequest(r: ForwardedRequest): void {
    this.requests.inc({ endpoint: r.endpoint, model: r.model, status: String(r.status) });
    this.duration.observe({ endpoint: r.endpoint, model: r.model }, r.durationMs / 1000);
  }
}
