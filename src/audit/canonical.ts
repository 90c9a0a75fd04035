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

/**
 * Object keys as JSON strings: records repeat the same few keys, so each is quoted once (a bounded
 * memo, emptied when full).
 */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 4096;
const MAX_QUOTED_KEY_LENGTH = 64;

function quotedKey(key: string): string {
  if (key.length > MAX_QUOTED_KEY_LENGTH) return JSON.stringify(key);
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size >= MAX_QUOTED_KEYS) quotedKeys.clear();
    quotedKeys.set(key, quoted);
  }
  return quoted;
}

// Plain loops and string concatenation, no closure per element: every audit record is written
// through here once, on the path of each decision and each writ.
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
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += canonicalJson(value[i]);
        }
        return `${out}]`;
      }
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object);
      // often already in order (records built in order, or read back from jsonb): no sort then
      for (let i = 1; i < keys.length; i++) {
        if (keys[i - 1]! > keys[i]!) {
          keys.sort();
          break;
        }
      }
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (i > 0) out += ",";
        out += quotedKey(key);
        out += ":";
        out += canonicalJson(object[key]);
      }
      return `${out}}`;
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

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this pattern finds
const MAY_BE_UNSTORABLE = /[\u0000\uD800-\uDFFF]/;

function storable(text: string): string {
  // most strings hold neither: one scan for the characters, the replacement only when one is there
  return MAY_BE_UNSTORABLE.test(text) ? text.replace(UNSTORABLE, "\uFFFD") : text;
}

/**
 * Plain JSON from arbitrary input, as `JSON.stringify` would see it (toJSON honoured, undefined /
 * functions / symbols dropped from objects and nulled in arrays, non-finite numbers null), plus:
 * bigints become decimal strings and strings are made storable. Throws a `TypeError` on a cycle or
 * nesting deeper than 64.
 */
export function toJsonValue(value: unknown): JsonValue | undefined {
  // the objects being walked, outermost first (at most MAX_DEPTH: a short array beats a Set here)
  const open: object[] = [];
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
        if (open.includes(v)) throw new TypeError("audit data: circular reference");
        open.push(v);
        try {
          if (Array.isArray(v)) {
            const items: JsonValue[] = new Array(v.length);
            for (let i = 0; i < v.length; i++) items[i] = walk(v[i], depth + 1) ?? null;
            return items;
          }
          const out: Record<string, JsonValue> = {};
          const source = v as Record<string, unknown>;
          for (const key of Object.keys(source)) {
            const converted = walk(source[key], depth + 1);
            if (converted === undefined) continue;
            const name = storable(key);
            // an own member named `__proto__`, as Object.fromEntries makes it (not the prototype)
            if (name === "__proto__") {
              Object.defineProperty(out, name, {
                value: converted,
                enumerable: true,
                writable: true,
                configurable: true,
              });
            } else {
              out[name] = converted;
            }
          }
          return out;
        } finally {
          open.pop();
        }
      }
      default:
        return undefined;
    }
  };
  return walk(value, 0);
}
