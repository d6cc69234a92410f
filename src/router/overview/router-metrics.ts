// The router's Prometheus metrics (GET /metrics): one sample per finished inference request
// (from RequestEvents), model file bytes served to nodes, and fleet gauges computed at scrape
// time from the node registry and the admission queue. A Registry of its own, so `drover up`
// (router and node in one process) exposes two separate sets.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ModelState } from "../../protocol/node-api.js";
import type { AdmissionQueue } from "../request-path/admission-queue.js";
import type { NodeRecord, NodeRegistry } from "../fleet/node-registry.js";
import type { RequestRecord } from "../../protocol/request-record.js";
import type { RequestEvents } from "../request-path/request-events.js";

export interface RouterMetricsDeps {
  registry: NodeRegistry;
  queue: AdmissionQueue;
  events: RequestEvents;
  /** Catalog model ids: the queue gauge reports 0 for idle models instead of nothing. */
  modelIds: readonly string[];
}

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUEUE_WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
const NODE_STATES = ["initializing", "online", "offline"] as const;

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly fileBytes: Counter<"model">;

  constructor(deps: RouterMetricsDeps) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const requests = new Counter({
      name: "drover_requests_total",
      help: "Inference requests answered, by API, endpoint, model, serving node (none: not routed) and HTTP status (499: client left)",
      labelNames: ["api", "endpoint", "model", "node", "status"],
      registers,
    });
    const duration = new Histogram({
      name: "drover_request_duration_seconds",
      help: "Time from arrival at the router to the end of the response",
      labelNames: ["endpoint", "model"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const ttft = new Histogram({
      name: "drover_time_to_first_token_seconds",
      help: "Time from arrival to the first byte of a streamed response's body (the first token)",
      labelNames: ["endpoint", "model"],
      buckets: TTFT_BUCKETS,
      registers,
    });
    const queueWait = new Histogram({
      name: "drover_queue_wait_seconds",
      help: "Time inference requests waited in the admission queue for a slot",
      labelNames: ["model"],
      buckets: QUEUE_WAIT_BUCKETS,
      registers,
    });
    const tokens = new Counter({
      name: "drover_tokens_total",
      help: "Tokens of answered requests: prompt (in), completion (out), and cached (the part of prompt the engine reused from a cached prefix)",
      labelNames: ["model", "kind"],
      registers,
    });
    // Requests with an affinity key (chat and completions): whether they ran on the node their key
    // ranks first. Under --routing least-load they show how often least-load lands there anyway.
    const affinityHits = new Counter({
      name: "drover_affinity_hits_total",
      help: "Requests with an affinity key that ran on the node their key ranks first (where their prefix is cached), by model and routing policy",
      labelNames: ["model", "routing"],
      registers,
    });
    const affinityMisses = new Counter({
      name: "drover_affinity_misses_total",
      help: "Requests with an affinity key that ran on another node (preferred one above its load bound or full; or placed by least-load), by model and routing policy",
      labelNames: ["model", "routing"],
      registers,
    });
    this.fileBytes = new Counter({
      name: "drover_model_file_bytes_sent_total",
      help: "Model file bytes served to nodes from the router's model cache",
      labelNames: ["model"],
      registers,
    });

    deps.events.onFinished((r: RequestRecord) => {
      const node = r.nodeName ?? "none";
      requests.inc({ api: r.api, endpoint: r.endpoint, model: r.modelId, node, status: String(r.status) });
      duration.observe({ endpoint: r.endpoint, model: r.modelId }, r.durationMs / 1000);
      if (r.stream && r.firstByteMs !== null) ttft.observe({ endpoint: r.endpoint, model: r.modelId }, r.firstByteMs / 1000);
      // Requests refused before routing never waited for a slot.
      if (r.nodeName !== null) queueWait.observe({ model: r.modelId }, r.queueWaitMs / 1000);
      if (r.promptTokens) tokens.inc({ model: r.modelId, kind: "prompt" }, r.promptTokens);
      if (r.completionTokens) tokens.inc({ model: r.modelId, kind: "completion" }, r.completionTokens);
      if (r.cachedTokens) tokens.inc({ model: r.modelId, kind: "cached" }, r.cachedTokens);
      if (r.affinity && r.routing) (r.affinity === "hit" ? affinityHits : affinityMisses).inc({ model: r.modelId, routing: r.routing });
    });

    new Gauge({
      name: "drover_queue_depth",
      help: "Requests waiting in the admission queue, per model",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        const waiting = deps.queue.snapshot().models;
        for (const id of new Set([...deps.modelIds, ...Object.keys(waiting)])) this.set({ model: id }, waiting[id]?.depth ?? 0);
      },
    });
    new Gauge({
      name: "drover_nodes",
      help: "Nodes known to the router, by state",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        const nodes = deps.registry.all();
        for (const state of NODE_STATES) this.set({ state }, nodes.filter((n) => n.state === state).length);
      },
    });
    const perNodeModel = (name: string, help: string, value: (node: NodeRecord, modelId: string) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["node", "model"],
        registers,
        collect() {
          this.reset();
          for (const node of deps.registry.all()) {
            for (const id of node.models.keys()) {
              const v = value(node, id);
              if (v !== undefined) this.set({ node: node.name, model: id }, v);
            }
          }
        },
      });
    new Gauge({
      name: "drover_node_model_state",
      help: "Per-model engine state on each node as last reported: 1 for the current state, 0 for the others",
      labelNames: ["node", "model", "state"],
      registers,
      collect() {
        this.reset();
        for (const node of deps.registry.all()) {
          for (const m of node.models.values())
            for (const state of ModelState.options) this.set({ node: node.name, model: m.id, state }, m.state === state ? 1 : 0);
        }
      },
    });
    perNodeModel("drover_in_flight", "Requests the router has in flight on each node, per model", (node, id) => node.inFlight.get(id) ?? 0);
    perNodeModel("drover_node_model_slots", "Slots each node offers for the model", (node, id) => node.models.get(id)?.slots);
    perNodeModel("drover_engine_restarts", "Engine restarts each node reports for the model", (node, id) => node.models.get(id)?.restarts);
    perNodeModel(
      "drover_node_download_bytes",
      "Bytes of the model file a node has downloaded (while downloading)",
      (node, id) => node.models.get(id)?.bytesDone,
    );

    const perNode = (name: string, help: string, value: (node: NodeRecord) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["node"],
        registers,
        collect() {
          this.reset();
          for (const node of deps.registry.all()) {
            const v = value(node);
            if (v !== undefined) this.set({ node: node.name }, v);
          }
        },
      });
    perNode("drover_node_cpu_percent", "Host CPU use each node reports (0-100)", (n) => n.metrics.cpuPercent);
    perNode("drover_node_memory_used_bytes", "Host memory in use each node reports", (n) => n.metrics.memoryUsedBytes);
    perNode("drover_node_memory_total_bytes", "Host memory each node reports", (n) => n.metrics.memoryTotalBytes);
    const perGpu = (name: string, help: string, value: (g: NonNullable<NodeRecord["metrics"]["gpus"]>[number]) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["node", "gpu", "name"],
        registers,
        collect() {
          this.reset();
          for (const node of deps.registry.all()) {
            for (const g of node.metrics.gpus ?? []) {
              const v = value(g);
              if (v !== undefined) this.set({ node: node.name, gpu: String(g.index), name: g.name }, v);
            }
          }
        },
      });
    perGpu("drover_node_gpu_utilization_percent", "GPU utilisation each node reports (nvidia-smi)", (g) => g.utilizationPercent);
    perGpu("drover_node_gpu_memory_used_bytes", "GPU memory in use each node reports (nvidia-smi)", (g) => g.memoryUsedBytes);
    perGpu("drover_node_gpu_memory_total_bytes", "GPU memory each node reports (nvidia-smi)", (g) => g.memoryTotalBytes);
    perGpu("drover_node_gpu_temperature_celsius", "GPU temperature each node reports (nvidia-smi)", (g) => g.temperatureC);
  }

  /** A model file response to a node finished (whole file or a range). */
  countModelFileBytes(modelId: string, bytes: number): void {
    if (bytes > 0) this.fileBytes.inc({ model: modelId }, bytes);
  }
}
