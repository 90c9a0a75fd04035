/**
 * Console sessions, held by the server: a random 32-byte id in an HttpOnly, SameSite=Strict cookie
 * (Secure off loopback), looked up here with its role, its person, its CSRF token and its expiry.
 * Nothing about the session is trusted from the browser but the id. Login challenges (one use, two
 * minutes) live here too. In memory: a restart signs everyone out, and each `writ serve` process
 * behind one PostgreSQL has its own sessions (documented in docs/console.md).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export type Role = "operator" | "approver";

export interface Session {
  readonly id: string;
  readonly role: Role;
  /** The approver's id, or the name the operator gave at login. */
  readonly who: string;
  readonly csrf: string;
  readonly expiresAt: Date;
}

export const COOKIE = "writ_console";
/** Absolute lifetime of a session. */
export const SESSION_SECONDS = 8 * 3600;
const CHALLENGE_SECONDS = 120;
/** Bounds on what memory the unauthenticated can make the server hold. */
const MAX_SESSIONS = 10_000;
const MAX_CHALLENGES = 10_000;

const token = () => randomBytes(32).toString("base64url");
const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time equality of two strings (by their digests, so lengths leak nothing either). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export class Sessions {
  readonly #sessions = new Map<string, Session>();
  readonly #challenges = new Map<string, number>();
  readonly #clock: () => Date;

  constructor(clock: () => Date = () => new Date()) {
    this.#clock = clock;
  }

  create(role: Role, who: string): Session {
    const now = this.#clock().getTime();
    this.#sweep(now);
    // the oldest go first when full (Map keeps insertion order)
    while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const session: Session = {
      id: token(),
      role,
      who,
      csrf: token(),
      expiresAt: new Date(now + SESSION_SECONDS * 1000),
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const s = this.#sessions.get(id);
    if (s === undefined) return undefined;
    if (s.expiresAt.getTime() <= this.#clock().getTime()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string): void {
    this.#sessions.delete(id);
  }

  /** A fresh login challenge: used once, within two minutes. */
  challenge(): string {
    const now = this.#clock().getTime();
    this.#sweep(now);
    while (this.#challenges.size >= MAX_CHALLENGES)
      this.#challenges.delete(this.#challenges.keys().next().value!);
    const c = token();
    this.#challenges.set(c, now + CHALLENGE_SECONDS * 1000);
    return c;
  }

  /** True once for a challenge this server issued that has not expired; it is spent either way. */
  spend(challenge: string): boolean {
    const until = this.#challenges.get(challenge);
    this.#challenges.delete(challenge);
    return until !== undefined && until > this.#clock().getTime();
  }

  #sweep(now: number): void {
    for (const [id, s] of this.#sessions) if (s.expiresAt.getTime() <= now) this.#sessions.delete(id);
    for (const [c, until] of this.#challenges) if (until <= now) this.#challenges.delete(c);
  }
}
