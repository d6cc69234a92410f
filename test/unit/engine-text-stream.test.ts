import type { Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { StopStringMatcher, TokenTextDecoder, type Detokenizer } from "../../src/engine/llama/text-stream.js";

/** Byte-level fake: token n is byte n. */
const bytes: Detokenizer = {
  detokenize: (tokens) => Buffer.from(tokens as unknown as number[]).toString("utf8"),
};
const tok = (n: number) => n as Token;

function run(matcher: StopStringMatcher, chunks: string[]): { out: string; stopped: boolean } {
  let out = "";
  for (const c of chunks) {
    const m = matcher.push(c);
    out += m.text;
    if (m.stopped) return { out, stopped: true };
  }
  return { out: out + matcher.flush(), stopped: false };
}

describe("TokenTextDecoder", () => {
  it("passes ASCII through token by token", () => {
    const d = new TokenTextDecoder(bytes);
    expect([..."abc"].map((c) => d.push(tok(c.charCodeAt(0))))).toEqual(["a", "b", "c"]);
    expect(d.flush()).toBe("");
  });

  it("holds back a multi-byte character until it is complete", () => {
    const d = new TokenTextDecoder(bytes);
    const [b1, b2, b3] = [...Buffer.from("€")];
    expect(d.push(tok(b1))).toBe("");
    expect(d.push(tok(b2))).toBe("");
    expect(d.push(tok(b3))).toBe("€");
    expect(d.push(tok(0x21))).toBe("!");
  });

  it("gives up on invalid bytes after four tokens and on flush", () => {
    const d = new TokenTextDecoder(bytes);
    expect(d.push(tok(0xe2))).toBe("");
    expect(d.flush()).toBe("\uFFFD");
    for (let i = 0; i < 3; i++) expect(d.push(tok(0xff))).toBe("");
    expect(d.push(tok(0xff))).toBe("\uFFFD".repeat(4));
  });
});

describe("StopStringMatcher", () => {
  it("passes text through when there are no stop strings", () => {
    expect(run(new StopStringMatcher([]), ["ab", "cd"])).toEqual({ out: "abcd", stopped: false });
    expect(run(new StopStringMatcher([""]), ["ab"])).toEqual({ out: "ab", stopped: false });
  });

  it("stops before a stop string inside one chunk", () => {
    expect(run(new StopStringMatcher(["cd"]), ["abcdef"])).toEqual({ out: "ab", stopped: true });
  });

  it("stops before a stop string split over chunks, never emitting its start", () => {
    const m = new StopStringMatcher(["STOP"]);
    expect(m.push("xxS")).toEqual({ text: "xx", stopped: false });
    expect(m.push("T")).toEqual({ text: "", stopped: false });
    expect(m.push("OPyy")).toEqual({ text: "", stopped: true });
    expect(m.flush()).toBe("");
  });

  it("releases held text when the match fails", () => {
    const m = new StopStringMatcher(["STOP"]);
    expect(m.push("ST")).toEqual({ text: "", stopped: false });
    expect(m.push("x")).toEqual({ text: "STx", stopped: false });
    expect(run(new StopStringMatcher(["STOP"]), ["a", "ST"])).toEqual({ out: "aST", stopped: false });
  });

  it("picks the earliest of several stop strings", () => {
    expect(run(new StopStringMatcher(["zz", "b"]), ["a", "bzz"])).toEqual({ out: "a", stopped: true });
    expect(run(new StopStringMatcher(["bc", "abcd"]), ["ab", "cd"])).toEqual({ out: "", stopped: true });
    expect(run(new StopStringMatcher(["bc", "xbcd"]), ["ab", "cd"])).toEqual({ out: "a", stopped: true });
  });
});
