/**
 * The `hooks:` section of writ.yaml: what `writ hook` needs beyond the agents' grants — the files
 * whose content is untrusted (reading one taints the session, like a web fetch) and how long taint
 * lasts. Checked with the loader's `Checker`.
 */
import { type HooksConfig, type Path, q } from "../core/index.js";
import type { Checker } from "./load.js";
import { SHAPES } from "./schema.js";

const DEFAULT_TAINT_TTL = 24 * 60 * 60;
const MAX_GLOB = 4096;

export function parseHooks(c: Checker, v: unknown): HooksConfig | undefined {
  if (v === undefined) return undefined;
  const path: Path = ["hooks"];
  const obj = c.map(v, path, "`{untrusted: [PATH_GLOB], taintTtl: DURATION}`");
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.hooks);
  const untrusted: string[] = [];
  const list = obj.untrusted === undefined ? [] : (c.list(obj.untrusted, [...path, "untrusted"]) ?? []);
  list.forEach((g, i) => {
    if (typeof g !== "string" || !g.startsWith("/") || g.length > MAX_GLOB || g.includes("\0")) {
      c.error(
        "ERR_CONFIG_HOOKS",
        [...path, "untrusted", i],
        `${q(g)}: expected an absolute path glob (\`/srv/inbox/**\`) of at most ${MAX_GLOB} characters`,
      );
    } else untrusted.push(g);
  });
  const ttl =
    obj.taintTtl === undefined ? DEFAULT_TAINT_TTL : c.duration(obj.taintTtl, [...path, "taintTtl"]);
  return { untrusted, taintTtlSeconds: ttl ?? DEFAULT_TAINT_TTL };
}
