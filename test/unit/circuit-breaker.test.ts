// The per-node circuit breaker on a manual clock: one trial at a time while half-open, close on
// success, re-open with a doubling cooldown up to its cap, an early trial after a heartbeat, and
// every dispatched request settling it exactly once (success, failure or neutral).
import { describe, expect, test } from "vitest";
import { BASE_COOLDOWN_MS, CircuitBreaker, MAX_COOLDOWN_MS, type BreakerOutcome } from "../../src/router/fleet/circuit-breaker.js";

function clocked() {
  let now = 1_000_000;
  const breaker = new CircuitBreaker(() => now);
  return { breaker, advance: (ms: number) => (now += ms) };
}

describe("circuit breaker", () => {
  test("closed until a failure; open for the base cooldown; then half-open", () => {
    const { breaker, advance } = clocked();
    expect(breaker.state).toBe("closed");
    expect(breaker.onDispatch()).toBe(false); // not a trial while closed
    breaker.settle("failure", false);
    expect(breaker.state).toBe("open");
    expect(breaker.allows()).toBe(false);
    expect(breaker.msUntilTrial()).toBe(BASE_COOLDOWN_MS);
    advance(BASE_COOLDOWN_MS - 1);
    expect(breaker.allows()).toBe(false);
    advance(1);
    expect(breaker.state).toBe("half-open");
    expect(breaker.allows()).toBe(true);
  });

  test("half-open lets exactly one trial through at a time", () => {
    const { breaker, advance } = clocked();
    breaker.onFailure();
    advance(BASE_COOLDOWN_MS);
    expect(breaker.onDispatch()).toBe(true);
    expect(breaker.allows()).toBe(false);
    expect(breaker.onDispatch()).toBe(false); // a second dispatch is not another trial
    expect(breaker.allows()).toBe(false);
  });

  test("a successful trial closes it", () => {
    const { breaker, advance } = clocked();
    breaker.onFailure();
    advance(BASE_COOLDOWN_MS);
    const trial = breaker.onDispatch();
    breaker.settle("success", trial);
    expect(breaker.state).toBe("closed");
    expect(breaker.allows()).toBe(true);
    expect(breaker.msUntilTrial()).toBe(0);
  });

  test("a failed trial re-opens it with a doubled cooldown, up to the cap", () => {
    const { breaker, advance } = clocked();
    const cooldowns: number[] = [];
    breaker.onFailure();
    for (let i = 0; i < 10; i++) {
      cooldowns.push(breaker.msUntilTrial());
      advance(breaker.msUntilTrial());
      expect(breaker.state).toBe("half-open");
      breaker.settle("failure", breaker.onDispatch());
      expect(breaker.state).toBe("open");
    }
    expect(cooldowns.slice(0, 5)).toEqual([1, 2, 4, 8, 16].map((n) => n * BASE_COOLDOWN_MS));
    expect(Math.max(...cooldowns)).toBe(MAX_COOLDOWN_MS);
    expect(cooldowns.at(-1)).toBe(MAX_COOLDOWN_MS);
    // Any success resets the count: the next failure starts from the base cooldown again.
    advance(MAX_COOLDOWN_MS);
    breaker.settle("success", breaker.onDispatch());
    breaker.onFailure();
    expect(breaker.msUntilTrial()).toBe(BASE_COOLDOWN_MS);
  });

  test("a heartbeat allows a trial before the cooldown ends", () => {
    const { breaker } = clocked();
    for (let i = 0; i < 4; i++) breaker.onFailure();
    expect(breaker.msUntilTrial()).toBe(8 * BASE_COOLDOWN_MS);
    breaker.onHeartbeat();
    expect(breaker.state).toBe("half-open");
    expect(breaker.onDispatch()).toBe(true);
    expect(breaker.allows()).toBe(false);
    // A heartbeat on a closed breaker changes nothing.
    const other = clocked().breaker;
    other.onHeartbeat();
    expect(other.state).toBe("closed");
  });

  test("a neutral trial (client gone, model not ready there) frees the trial without closing or re-opening", () => {
    const { breaker, advance } = clocked();
    breaker.onFailure();
    advance(BASE_COOLDOWN_MS);
    const trial = breaker.onDispatch();
    breaker.settle("neutral", trial);
    expect(breaker.state).toBe("half-open");
    expect(breaker.allows()).toBe(true);
    // A neutral non-trial request does not free someone else's trial.
    expect(breaker.onDispatch()).toBe(true);
    breaker.settle("neutral", false);
    expect(breaker.allows()).toBe(false);
  });

  test("whatever the outcome, a half-open breaker is never left waiting for one", () => {
    for (const outcome of ["success", "failure", "neutral"] as BreakerOutcome[]) {
      const { breaker, advance } = clocked();
      breaker.onFailure();
      advance(BASE_COOLDOWN_MS);
      breaker.settle(outcome, breaker.onDispatch());
      advance(MAX_COOLDOWN_MS); // past any cooldown the outcome started
      expect(breaker.allows(), outcome).toBe(true);
    }
  });
});
