/**
 * Canonical JSON, the byte string every audit hash and checkpoint signature is computed over.
 *
 *   - objects: keys sorted by UTF-16 code units (JavaScript's default sort), `{"a":1,"b":2}`
 *   - arrays: in order, `[1,2]`
 *   - no whitespace anywhere
 *   - strings: escaped exactly as `JSON.stringify` escapes them
 *   - numbers: ECMAScript shortest round-trip form (`JSON.stringify`), `-0` as `0`
 *   - `true`, `false`, `null`
 *
 * For the values writ writes this is RFC 8785 (JCS). Only plain JSON values are accepted:
 * `toJsonValue` turns arbitrary input into one first.
 */

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical json: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k])}`).join(",")}}`;
    }
    default:
      throw new TypeError(`canonical json: a ${typeof value} is not a JSON value`);
  }
}

const MAX_DEPTH = 64;
// Lone surrogates cannot be stored as UTF-8 (PostgreSQL refuses them) and NUL cannot be stored in
// jsonb; both become U+FFFD before hashing, so what is hashed is what is stored.
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this pattern finds
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function storable(text: string): string {
  return text.replace(UNSTORABLE, "\uFFFD");
}

/**
 * Plain JSON from arbitrary input, as `JSON.stringify` would see it (toJSON honoured, undefined /
 * functions / symbols dropped from objects and nulled in arrays, non-finite numbers null), plus:
 * bigints become decimal strings and strings are made storable. Throws a `TypeError` on a cycle or
 * nesting deeper than 64.
 */
export function toJsonValue(value: unknown): JsonValue | undefined {
  const seen = new Set<object>();
  const walk = (input: unknown, depth: number): JsonValue | undefined => {
    let v = input;
    if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON: () => unknown }).toJSON();
    }
    if (v === null) return null;
    switch (typeof v) {
      case "boolean":
        return v;
      case "number":
        return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : null;
      case "string":
        return storable(v);
      case "bigint":
        return v.toString();
      case "object": {
        if (depth >= MAX_DEPTH) throw new TypeError(`audit data: nested deeper than ${MAX_DEPTH} levels`);
        if (seen.has(v)) throw new TypeError("audit data: circular reference");
        seen.add(v);
        try {
          if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1) ?? null);
          const entries: [string, JsonValue][] = [];
          for (const [key, item] of Object.entries(v)) {
            const converted = walk(item, depth + 1);
            if (converted !== undefined) entries.push([storable(key), converted]);
          }
          return Object.fromEntries(entries);
        } finally {
          seen.delete(v);
        }
      }
      default:
        return undefined;
    }
  };
  return walk(value, 0);
}
