/**
 * Per-agent and per-agent-and-tool rate limits: token buckets in memory (capacity `count`, refilled
 * at `count / perSeconds` a second). Per process: several `writ serve` processes each allow the
 * rate, which docs/gateway.md says.
 */
import type { RateLimit } from "../core/index.js";

interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimiter {
  /** Takes one token from every bucket, or none: the seconds to wait when one is empty. */
  take(
    keys: readonly (readonly [string, RateLimit])[],
    nowMs: number,
  ): { ok: true } | { ok: false; retryAfter: number; key: string };
}

const MAX_BUCKETS = 100_000;

export function rateLimiter(): RateLimiter {
  const buckets = new Map<string, Bucket>();
  const level = (key: string, limit: RateLimit, now: number): Bucket => {
    let b = buckets.get(key);
    const rate = limit.count / (limit.perSeconds * 1000);
    if (b === undefined) {
      if (buckets.size >= MAX_BUCKETS) buckets.clear();
      b = { tokens: limit.count, at: now };
      buckets.set(key, b);
    } else {
      b.tokens = Math.min(limit.count, b.tokens + (now - b.at) * rate);
      b.at = now;
    }
    return b;
  };
  return {
    take(keys, now) {
      const levels = keys.map(([key, limit]) => ({ key, limit, b: level(key, limit, now) }));
      for (const { key, limit, b } of levels) {
        if (b.tokens < 1) {
          const rate = limit.count / limit.perSeconds;
          return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / rate)), key };
        }
      }
      for (const { b } of levels) b.tokens -= 1;
      return { ok: true };
    },
  };
}
