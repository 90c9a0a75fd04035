/**
 * One agent's active writs, indexed so that a decision looks at the few grants that can cover its
 * request instead of every grant of every writ.
 *
 * Each writ grant is filed under its provider (when its provider segment is one literal name) and
 * the literal text before the first wildcard of each alternative of its resource pattern (folded
 * when the provider compares resources case-insensitively): `arn:aws:s3:::lake/batch-7/*` under
 * `aws` and `arn:aws:s3:::lake/batch-7/`. A request hashes its own resource once, along its
 * characters, and reads one table entry per distinct prefix length, plus the grants whose provider
 * is a pattern. An entry carries what the lookup needs (the writ's validity and environment, a
 * literal action key, the reason to cite, and whether its prefix alone proves the resource), so a
 * candidate costs one object read. Within a bucket
 * grants are kept in issuance order (issued at, then id), so the first active grant that covers the
 * request ends that bucket's scan: a decision costs the same with one writ or ten thousand unless
 * thousands of grants share one resource prefix and miss the request's action.
 *
 * Pure data: no clock, no I/O. The decision point's writ index (src/pdp/writ-index.ts) keeps one per
 * agent and updates it as writs are issued, spent, revoked and expire.
 */
import type { Reason } from "./decide.js";
import type { ActiveWrit, Grant } from "./model.js";
import { type Alt, type Glob, literalPrefix } from "./pattern.js";
import { actionMatches, type Rule, resourceMatches } from "./permission.js";
import { type ParsedAction, type Provider, RULES } from "./vocabulary.js";

/**
 * A change to one writ, as the store announces it (store/changes.ts) and the writ index applies it
 * (pdp/writ-index.ts).
 */
export interface WritChange {
  /**
   * `issuing`: this process is about to store the writ; its `insert` (with `writ`) follows, or
   * `abandoned` when it was not stored.
   */
  readonly op: "issuing" | "abandoned" | "insert" | "update" | "delete" | "truncate";
  /** Empty for `truncate`. */
  readonly id: string;
  readonly agent: string;
  readonly status?: "active" | "revoked" | undefined;
  readonly uses?: number | undefined;
  readonly maxUses?: number | null | undefined;
  /** Epoch milliseconds. */
  readonly issuedAt?: number | undefined;
  readonly expiresAt?: number | undefined;
  /** The compiled writ, when this process stored it: the index adds it without reading the store. */
  readonly writ?: ActiveWrit | undefined;
}

/** Why a writ whose grant covers the request does not count. */
export type InactiveWhy = "expired" | "revoked" | "spent" | "other-environment" | "not-yet-valid";

/** The writ state a decision reads, kept apart from the readonly `ActiveWrit` so uses can change. */
class Slot {
  writ: ActiveWrit;
  readonly environment: string;
  readonly revoked: boolean;
  readonly issuedAt: number;
  readonly expiresAt: number;
  usesLeft: number;
  /** The buckets holding this writ's grants. */
  readonly homes: Bucket[] = [];
  constructor(writ: ActiveWrit, environment: string) {
    this.writ = writ;
    this.environment = environment;
    this.revoked = writ.revoked === true;
    this.issuedAt = writ.issuedAt.getTime();
    this.expiresAt = writ.expiresAt.getTime();
    // -1 stands for unlimited, so the field stays a small integer (one shape for every slot)
    this.usesLeft = writ.usesLeft === undefined ? -1 : writ.usesLeft;
  }
}

/** The resource check an entry needs once its bucket matched the request's prefix. */
const GLOB = 0; // the whole resource pattern
const PREFIX_STAR = 1; // none: the alternative is the prefix and one trailing `*`
const LITERAL = 2; // none if the prefix is the whole resource: the alternative is literal

/**
 * One grant of one writ in one bucket, with copies of what a lookup reads (the writ's validity and
 * environment), so a lookup touches the entry alone. Revoked and spent writs are never held, so
 * those need no check here.
 */
class Entry {
  readonly slot: Slot;
  readonly writ: ActiveWrit;
  readonly grant: Grant;
  readonly index: number;
  readonly tail: number;
  /** `provider:service:action` (folded as the provider compares) when all three are literal. */
  readonly action: string | undefined;
  readonly environment: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** The reason a decision cites for this grant, made once. */
  readonly reason: Reason;
  constructor(slot: Slot, grant: Grant, index: number, tail: number, action: string | undefined) {
    const w = slot.writ;
    this.slot = slot;
    this.writ = w;
    this.grant = grant;
    this.index = index;
    this.tail = tail;
    this.action = action;
    this.environment = slot.environment;
    this.issuedAt = slot.issuedAt;
    this.expiresAt = slot.expiresAt;
    this.reason = {
      kind: "grant",
      source: "writ",
      writ: w.id,
      playbook: w.playbook,
      rule: grant.rule.text,
      index,
    };
  }
}

/** The one text a glob matches, or undefined when it has wildcards or alternatives. */
function literalText(g: Glob): string | undefined {
  if (!g.literal || g.alts.length !== 1) return undefined;
  return literalPrefix(g.alts[0]!);
}

/**
 * The action key of a rule whose provider, service and action are each one literal name (GitHub
 * aside: its levels imply each other and its services are normalised), folded as the provider
 * compares them; `actionKey` gives the request's, and equal keys mean `actionMatches`.
 */
function ruleActionKey(rule: Rule): string | undefined {
  const provider = rule.literalProvider;
  if (provider === undefined || provider === "github") return undefined;
  const fold = RULES[provider].foldAction;
  const service = literalText(fold ? rule.service.folded : rule.service.raw);
  const action = literalText(fold ? rule.action.folded : rule.action.raw);
  if (service === undefined || action === undefined) return undefined;
  return `${provider}:${service}:${action}`;
}

function actionKey(a: ParsedAction): string | undefined {
  if (a.provider === "github") return undefined;
  const key = `${a.provider}:${a.service}:${a.action}`;
  return RULES[a.provider].foldAction ? key.toLowerCase() : key;
}

/** How an alternative's tail after its literal prefix is checked (see GLOB, PREFIX_STAR, LITERAL). */
function tailOf(alt: Alt, prefixLength: number): number {
  if (prefixLength === alt.length) return LITERAL;
  if (prefixLength === alt.length - 1 && alt[prefixLength]!.t === "star") return PREFIX_STAR;
  return GLOB;
}

/** Grants under one prefix (or the loose ones), in issuance order. */
class Bucket {
  readonly entries: Entry[] = [];
  readonly prefix: string;
  readonly owner: Prefixes | undefined;
  /** The next bucket whose prefix hashes alike (see `Prefixes`). */
  next: Bucket | undefined = undefined;
  constructor(prefix: string, owner: Prefixes | undefined) {
    this.prefix = prefix;
    this.owner = owner;
  }
}

/** One step of the prefix hash: lookups extend it one character at a time along the request. */
function step(h: number, code: number): number {
  return (Math.imul(h, 31) + code) | 0;
}

/** The table key of a prefix of `length` characters whose running hash is `h`. */
function slotKey(h: number, length: number): number {
  return (h ^ Math.imul(length + 1, 0x9e3779b1)) | 0;
}

function hashOf(prefix: string): number {
  let h = 0;
  for (let i = 0; i < prefix.length; i++) h = step(h, prefix.charCodeAt(i));
  return slotKey(h, prefix.length);
}

/**
 * The prefixes of one provider: distinct prefix lengths (ascending) and the bucket of each prefix,
 * also by a hash of the prefix, so that a lookup hashes the request's resource once, along its
 * characters, instead of cutting and hashing a string per prefix length.
 */
class Prefixes {
  readonly lengths: number[] = [];
  readonly buckets = new Map<string, Bucket>();
  /** By `hashOf(prefix)`; buckets whose prefixes hash alike are chained through `next`. */
  readonly hashed = new Map<number, Bucket>();
  /** How many buckets have a prefix of each length. */
  readonly perLength = new Map<number, number>();

  bucket(prefix: string): Bucket {
    let b = this.buckets.get(prefix);
    if (b !== undefined) return b;
    b = new Bucket(prefix, this);
    this.buckets.set(prefix, b);
    const h = hashOf(prefix);
    b.next = this.hashed.get(h);
    this.hashed.set(h, b);
    const n = this.perLength.get(prefix.length) ?? 0;
    this.perLength.set(prefix.length, n + 1);
    if (n === 0) {
      this.lengths.push(prefix.length);
      this.lengths.sort((x, y) => x - y);
    }
    return b;
  }

  drop(b: Bucket): void {
    if (this.buckets.get(b.prefix) !== b) return;
    this.buckets.delete(b.prefix);
    const h = hashOf(b.prefix);
    let head = this.hashed.get(h);
    if (head === b) {
      if (b.next === undefined) this.hashed.delete(h);
      else this.hashed.set(h, b.next);
    } else {
      while (head !== undefined && head.next !== b) head = head.next;
      if (head !== undefined) head.next = b.next;
    }
    const n = (this.perLength.get(b.prefix.length) ?? 1) - 1;
    if (n > 0) {
      this.perLength.set(b.prefix.length, n);
      return;
    }
    this.perLength.delete(b.prefix.length);
    this.lengths.splice(this.lengths.indexOf(b.prefix.length), 1);
  }
}

/** What a lookup found: the deciding grant and the first covering writ that did not count. */
export class WritMatch {
  writ: ActiveWrit | undefined = undefined;
  grantIndex = -1;
  /** The reason to cite for the match, when the index made it already. */
  reason: Reason | undefined = undefined;
  skipped: ActiveWrit | undefined = undefined;
  skippedWhy: InactiveWhy | undefined = undefined;
  /** Issuance order of the match so far (for picking the earliest across buckets). */
  issuedAt = 0;
}

/** Why `w` does not count for a request in `env` at `now`, or undefined when it does. */
export function inactiveWhy(w: ActiveWrit, env: string, now: number): InactiveWhy | undefined {
  if (w.revoked) return "revoked";
  if (now >= w.expiresAt.getTime()) return "expired";
  if (now < w.issuedAt.getTime()) return "not-yet-valid";
  if (w.usesLeft !== undefined && w.usesLeft <= 0) return "spent";
  if (w.environment !== env) return "other-environment";
  return undefined;
}

function before(a: Slot, b: ActiveWrit, bIssuedAt: number): boolean {
  return a.issuedAt < bIssuedAt || (a.issuedAt === bIssuedAt && a.writ.id < b.id);
}

/** Does `e` come before the match in `out` (issuance order, then grant order)? */
function precedes(e: Entry, out: WritMatch): boolean {
  const w = out.writ!;
  if (e.writ === w) return e.index < out.grantIndex;
  return e.issuedAt < out.issuedAt || (e.issuedAt === out.issuedAt && e.writ.id < w.id);
}

function file(bucket: Bucket, e: Entry): void {
  const list = bucket.entries;
  if (e.slot.homes.at(-1) !== bucket) e.slot.homes.push(bucket);
  // writs arrive in issuance order nearly always: start from the end
  let i = list.length;
  while (i > 0 && before(e.slot, list[i - 1]!.slot.writ, list[i - 1]!.slot.issuedAt)) i--;
  list.splice(i, 0, e);
}

function removeSlot(list: Entry[], slot: Slot): void {
  let w = 0;
  for (let r = 0; r < list.length; r++) {
    const e = list[r]!;
    if (e.slot !== slot) list[w++] = e;
  }
  list.length = w;
}

export class WritSet {
  readonly agent: string;
  readonly #slots = new Map<string, Slot>();
  readonly #byProvider = new Map<Provider, Prefixes>();
  /** Grants whose provider segment is a pattern: looked at by every request. */
  readonly #loose = new Bucket("", undefined);
  readonly #keys = new Map<string, string>();
  /** The earliest expiry held, so pruning runs only when something has expired. */
  #nextExpiry = Number.POSITIVE_INFINITY;

  constructor(agent: string, writs: Iterable<ActiveWrit> = []) {
    this.agent = agent;
    for (const w of writs) this.add(w);
  }

  get size(): number {
    return this.#slots.size;
  }

  has(id: string): boolean {
    return this.#slots.has(id);
  }

  get(id: string): ActiveWrit | undefined {
    return this.#slots.get(id)?.writ;
  }

  /** The writs held, in no particular order. */
  writs(): ActiveWrit[] {
    const out: ActiveWrit[] = [];
    for (const s of this.#slots.values()) out.push(s.writ);
    return out;
  }

  /** Adds a writ of this agent (replacing one of the same id). Revoked or spent writs are not held. */
  add(w: ActiveWrit): void {
    if (w.agent !== this.agent) throw new TypeError(`writ ${w.id} is not agent ${this.agent}'s`);
    this.delete(w.id);
    if (w.revoked || (w.usesLeft !== undefined && w.usesLeft <= 0)) return;
    const slot = new Slot(w, this.#intern(w.environment));
    this.#slots.set(w.id, slot);
    if (slot.expiresAt < this.#nextExpiry) this.#nextExpiry = slot.expiresAt;
    for (let i = 0; i < w.grants.length; i++) {
      const g = w.grants[i]!;
      const key = ruleActionKey(g.rule);
      const action = key === undefined ? undefined : this.#intern(key);
      const provider = g.rule.literalProvider;
      if (provider === undefined) {
        file(this.#loose, new Entry(slot, g, i, GLOB, action));
        continue;
      }
      let p = this.#byProvider.get(provider);
      if (p === undefined) {
        p = new Prefixes();
        this.#byProvider.set(provider, p);
      }
      const glob = RULES[provider].foldResource ? g.rule.resource.folded : g.rule.resource.raw;
      const prefixes = glob.alts.map((alt) => literalPrefix(alt));
      for (let k = 0; k < prefixes.length; k++) {
        const prefix = prefixes[k]!;
        // alternatives sharing a prefix file the grant once, with the whole pattern to check
        if (prefixes.indexOf(prefix) !== k) continue;
        const shared = prefixes.lastIndexOf(prefix) !== k;
        const tail = shared ? GLOB : tailOf(glob.alts[k]!, prefix.length);
        file(p.bucket(prefix), new Entry(slot, g, i, tail, action));
      }
    }
  }

  /** One string per distinct action key or environment, so that entries share it. */
  #intern(key: string): string {
    const known = this.#keys.get(key);
    if (known !== undefined) return known;
    this.#keys.set(key, key);
    return key;
  }

  delete(id: string): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    this.#slots.delete(id);
    for (const b of slot.homes) {
      removeSlot(b.entries, slot);
      if (b.entries.length === 0) b.owner?.drop(b);
    }
    return true;
  }

  /**
   * Records uses left (monotonic: a stale report of more uses left is ignored); a spent writ leaves
   * the set. Returns false when the writ is not held.
   */
  setUsesLeft(id: string, usesLeft: number): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    if (slot.usesLeft < 0 || usesLeft >= slot.usesLeft) return true;
    if (usesLeft <= 0) {
      this.delete(id);
      return true;
    }
    slot.usesLeft = usesLeft;
    slot.writ = { ...slot.writ, usesLeft };
    return true;
  }

  /** Drops the writs expired at `now` (ms); cheap when none has. */
  prune(now: number): void {
    if (now < this.#nextExpiry) return;
    let next = Number.POSITIVE_INFINITY;
    const expired: string[] = [];
    for (const [id, s] of this.#slots) {
      if (s.expiresAt <= now) expired.push(id);
      else if (s.expiresAt < next) next = s.expiresAt;
    }
    for (const id of expired) this.delete(id);
    this.#nextExpiry = next;
  }

  /**
   * The earliest-issued active writ grant that covers `a` on `resource` in `env` at `now` (ms), and
   * the first covering writ that does not count, into `out` (reset first).
   */
  lookup(a: ParsedAction, resource: string, env: string, now: number, out: WritMatch): void {
    out.writ = undefined;
    out.grantIndex = -1;
    out.reason = undefined;
    out.skipped = undefined;
    out.skippedWhy = undefined;
    out.issuedAt = 0;
    const action = actionKey(a);
    scan(this.#loose.entries, a, resource, env, now, out, action, false);
    const p = this.#byProvider.get(a.provider);
    if (p === undefined) return;
    const key = RULES[a.provider].foldResource ? resource.toLowerCase() : resource;
    const lengths = p.lengths;
    let h = 0;
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const len = lengths[i]!;
      if (len > key.length) break;
      while (at < len) h = step(h, key.charCodeAt(at++));
      const whole = len === key.length;
      for (let b = p.hashed.get(slotKey(h, len)); b !== undefined; b = b.next) {
        if (b.prefix.length === len && key.startsWith(b.prefix)) {
          scan(b.entries, a, resource, env, now, out, action, whole);
        }
      }
    }
  }
}

/** Why the writ of an entry does not count (as `inactiveWhy`; held writs are neither revoked nor spent). */
function entryInactive(e: Entry, env: string, now: number): InactiveWhy | undefined {
  if (now >= e.expiresAt) return "expired";
  if (now < e.issuedAt) return "not-yet-valid";
  if (e.environment !== env) return "other-environment";
  return undefined;
}

/** Does the entry's grant cover the request, its bucket's prefix being the request's (`whole`: all of it)? */
function covers(
  e: Entry,
  a: ParsedAction,
  resource: string,
  action: string | undefined,
  whole: boolean,
): boolean {
  const rule = e.grant.rule;
  if (
    e.action !== undefined && action !== undefined ? e.action !== action : !actionMatches(rule, a, "cover")
  ) {
    return false;
  }
  if (e.tail === PREFIX_STAR) return true;
  if (e.tail === LITERAL && whole) return true;
  return resourceMatches(rule, a.provider, resource);
}

/** Scans one bucket in issuance order up to its first active covering grant. */
function scan(
  list: readonly Entry[],
  a: ParsedAction,
  resource: string,
  env: string,
  now: number,
  out: WritMatch,
  action: string | undefined,
  whole: boolean,
): void {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    // nothing later in this bucket can come before the match already found
    if (out.writ !== undefined && !precedes(e, out)) return;
    if (!covers(e, a, resource, action, whole)) continue;
    const why = entryInactive(e, env, now);
    if (why === undefined) {
      out.writ = e.writ;
      out.grantIndex = e.index;
      out.reason = e.reason;
      out.issuedAt = e.issuedAt;
      return;
    }
    if (out.skipped === undefined) {
      out.skipped = e.writ;
      out.skippedWhy = why;
    }
  }
}
