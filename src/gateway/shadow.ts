/**
 * Shadow mode at the gateway (docs/shadow.md): the one place a gateway rule's refusal becomes a
 * would-have-denied record. A tool in `mode: shadow` records what its constraints and its taint
 * rule would refuse; `bounds` in `mode: shadow` record what lies outside them. Every other check
 * enforces, and the decision point's own shadow records are added as they come.
 */
import { isShadow, type RuleMode, type ShadowKind, type ShadowRecord } from "../core/index.js";
import { GatewayError } from "./errors.js";
import type { BoundsCheck } from "./resource.js";

/** A call's shadow records: on the audit record as `shadow` from the first one. */
export class ShadowSink {
  readonly #record: Record<string, unknown>;
  #records: ShadowRecord[] | undefined;

  constructor(record: Record<string, unknown>) {
    this.#record = record;
  }

  add(...records: readonly ShadowRecord[]): void {
    if (records.length === 0) return;
    if (this.#records === undefined) {
      this.#records = [];
      this.#record.shadow = this.#records;
    }
    this.#records.push(...records);
  }

  /**
   * A rule's refusal: returned when the rule enforces; recorded (and undefined: the call goes on)
   * when it is in shadow mode.
   */
  refuseOr(
    mode: RuleMode | undefined,
    rule: string,
    kind: ShadowKind,
    refusal: GatewayError,
  ): GatewayError | undefined {
    if (!isShadow(mode)) return refusal;
    this.add({ rule, kind, reason: refusal.reason, message: refusal.message });
    return undefined;
  }
}

/** The bounds check, its refusals recorded instead when the bounds are in shadow mode. */
export function shadowedBounds(
  check: BoundsCheck,
  mode: RuleMode | undefined,
  sink: ShadowSink,
): BoundsCheck {
  if (!isShadow(mode)) return check;
  return (kind, value, arg) => {
    try {
      check(kind, value, arg);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      // the bounds are in shadow mode here: recorded, never refused
      const enforced = sink.refuseOr(mode, "gateway:bounds", "bounds", err);
      if (enforced) throw enforced;
    }
  };
}
