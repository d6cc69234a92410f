// Summarizes V8 heap snapshots (.heapsnapshot, as `npm run bench -- memory` writes them with
// BENCH_HEAP_SNAPSHOT_DIR): the largest groups by shallow size, as the Summary view of Chrome's
// DevTools groups them (objects and closures by constructor, the rest by kind).
// Usage: tsx bench/heap-top.ts [--top N] file.heapsnapshot...
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const args = process.argv.slice(2);
const topAt = args.indexOf("--top");
const top = topAt === -1 ? 15 : Number(args.splice(topAt, 2)[1]);

for (const file of args) {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const size = snap.nodes[i + sizeAt]!;
    const key = type === "object" || type === "closure" ? `${snap.strings[snap.nodes[i + nameAt]!]}${type === "closure" ? "()" : ""}` : `(${type})`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
    total += size;
  }
  console.log(`\n${basename(file)}: ${(total / 1048576).toFixed(1)} MB in ${(snap.nodes.length / width).toLocaleString("en")} nodes\n`);
  console.log("| group | count | shallow MB | share |\n|---|---:|---:|---:|");
  for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    console.log(
      `| ${key.replaceAll("|", "\\\\|").slice(0, 60)} | ${g.count.toLocaleString("en")} | ${(g.bytes / 1048576).toFixed(2)} | ${((100 * g.bytes) / total).toFixed(1)} % |`,
    );
  }
}
