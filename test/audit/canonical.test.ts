import { describe, expect, it } from "vitest";
import { canonicalJson, GENESIS_HASH, recordHash, toJsonValue } from "../../src/audit/index.js";

describe("canonical json", () => {
  it("sorts keys at every level and writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"x":2,"y":1}]},"b":1}',
    );
  });

  it("sorts keys by UTF-16 code units, as RFC 8785 does", () => {
    // U+E000 sorts after U+1F600 by code point, but before it by UTF-16 code unit (0xD83D).
    expect(canonicalJson({ "\uE000": 1, "😀": 2, a: 0, B: 3 })).toBe('{"B":3,"a":0,"😀":2,"\uE000":1}');
  });

  it("sorts an object whose keys are in order but for the last, and leaves an ordered one as is", () => {
    expect(canonicalJson({ a: 1, b: 2, c: 3, B: 4 })).toBe('{"B":4,"a":1,"b":2,"c":3}');
    expect(canonicalJson({ a: 1, b: 2, c: 3 })).toBe('{"a":1,"b":2,"c":3}');
    const long = `k${"x".repeat(100)}"`;
    expect(canonicalJson({ [long]: 1, a: 2 })).toBe(`{"a":2,${JSON.stringify(long)}:1}`);
  });

  it("writes numbers in ECMAScript shortest form and -0 as 0", () => {
    expect(canonicalJson([1, 1.5, -0, 1e21, 1e-7, 0.1 + 0.2, 5e-324])).toBe(
      "[1,1.5,0,1e+21,1e-7,0.30000000000000004,5e-324]",
    );
  });

  it("escapes strings as JSON.stringify does", () => {
    expect(canonicalJson('a"b\\c\n\u0001é')).toBe('"a\\"b\\\\c\\n\\u0001é"');
  });

  it.each([[undefined], [Number.NaN], [Number.POSITIVE_INFINITY], [10n], [() => 1], [{ a: undefined }]])(
    "refuses a non-JSON value (%s)",
    (value) => {
      expect(() => canonicalJson(value)).toThrow(TypeError);
    },
  );

  it("pins the record hash format", () => {
    const hash = recordHash({
      seq: 1,
      at: new Date("2030-01-01T00:00:00.000Z"),
      type: "decision",
      data: { b: [1, "x"], a: { z: null, y: true } },
      prevHash: GENESIS_HASH,
    });
    // printf '%s' '{"at":"2030-01-01T00:00:00.000Z","data":{"a":{"y":true,"z":null},"b":[1,"x"]},"prev":"000…0","seq":1,"type":"decision"}' | sha256sum
    expect(hash).toBe("945dd5944c566b04187246297b57e1539c17c44da2458913e09c47ee08b42c3e");
  });
});

describe("toJsonValue", () => {
  it("follows JSON.stringify for dates, toJSON, undefined and non-finite numbers", () => {
    expect(
      toJsonValue({
        when: new Date("2030-01-01T00:00:00.000Z"),
        custom: { toJSON: () => "custom" },
        gone: undefined,
        fn: () => 1,
        list: [undefined, Number.NaN, Number.NEGATIVE_INFINITY, -0],
      }),
    ).toEqual({ when: "2030-01-01T00:00:00.000Z", custom: "custom", list: [null, null, null, 0] });
  });

  it("turns bigints into decimal strings", () => {
    expect(toJsonValue({ n: 12345678901234567890n })).toEqual({ n: "12345678901234567890" });
  });

  it("replaces NUL and lone surrogates, which PostgreSQL cannot store, in values and keys", () => {
    expect(toJsonValue({ "k\u0000": "a\u0000b\uD800c\uDC00", ok: "😀" })).toEqual({
      "k\uFFFD": "a\uFFFDb\uFFFDc\uFFFD",
      ok: "😀",
    });
  });

  it("keeps a __proto__ key as data", () => {
    const value = toJsonValue(JSON.parse('{"__proto__":{"polluted":true}}')) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses cycles and deep nesting", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => toJsonValue(cyclic)).toThrow(/circular/);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => toJsonValue(deep)).toThrow(/deeper/);
    const shared = { x: 1 };
    expect(toJsonValue({ a: shared, b: shared })).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });
});
