/**
 * The Cedar engine, behind one seam. Everything in src/pdp calls Cedar through this object, so that
 * tests can count calls (pre-parsing must happen once, not per decision) and nothing else in writ
 * imports the WebAssembly module directly.
 *
 * Positions in Cedar's answers are UTF-8 byte offsets into the text it was given; `charOffset`
 * turns them into string indices.
 */
import {
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  statefulIsAuthorized,
  validate,
} from "@cedar-policy/cedar-wasm/nodejs";

export type {
  AuthorizationAnswer,
  CedarValueJson,
  DetailedError,
  EntityJson,
  EntityUidJson,
  PolicyJson,
  SchemaJson,
  StatefulAuthorizationCall,
} from "@cedar-policy/cedar-wasm/nodejs";

export const cedar = {
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  statefulIsAuthorized,
  validate,
};

/** The string index of a UTF-8 byte offset into `text`. */
export function charOffset(text: string, byteOffset: number): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    if (bytes >= byteOffset) return i;
    const code = text.codePointAt(i)!;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (code >= 0x10000) i++; // the low surrogate
  }
  return text.length;
}

/** 1-based line and column of a string index. */
export function lineColumn(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: index - lineStart + 1 };
}
