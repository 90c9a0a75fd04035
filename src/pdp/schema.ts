/**
 * The Cedar schema writ generates from a config, namespace `Writ`:
 *
 *   entity Agent    { owner: String, purpose: String, runnerClass: String, environments: Set<String> }
 *   entity Resource { provider: String, service: String, id: String }
 *   action "aws", "aws:s3", "aws:s3:GetObject" in ["aws:s3"] ... appliesTo { Agent, Resource, Context }
 *
 *   type Context = {
 *     environment: String,
 *     time: { unix: Long, iso: String, hour: Long, minute: Long, weekday: String,     // UTC
 *             local: { timezone: String, hour: Long, minute: Long, weekday: String } },
 *     tainted: Bool, ticket?: String, writId?: String, promptContextId?: String,
 *   }
 *
 * `weekday` is `mon` … `sun`. `time.local` is the time in the environment's time zone (that of its
 * first change window; `UTC` when it has none).
 *
 * `context.arguments` (the tool call's arguments, arbitrary JSON) is always present at evaluation
 * but is not in the schema: Cedar's schemas have no open records (`additionalAttributes` needs an
 * experimental feature). Guardrails read it with `has` guards (`context.arguments has path &&
 * context.arguments.path like "/etc/*"`); the validator checks everything else in those policies,
 * and an argument of the wrong type fails the evaluation, which denies.
 *
 * The schema serves to validate guardrails at load. Decisions are evaluated without it, with each
 * request's action entity and its groups passed explicitly: a request for an action the config never
 * names must still meet `action in Writ::Action::"aws:s3"`, and Cedar refuses a request whose action
 * is missing from a schema it was given.
 */
import { actionProblems, compileRule, isWritError, type Vocabulary, type WritConfig } from "../core/index.js";
import {
  actionKey,
  actionParents,
  canonicalAction,
  concreteActions,
  parseAction,
  parseGroup,
} from "./actions.js";
import type { SchemaJson } from "./cedar.js";

export const NAMESPACE = "Writ";

export interface SchemaOptions {
  readonly vocab?: Vocabulary;
  /**
   * Action and group ids named by guardrails. Those that are valid writ actions join the schema, in
   * their own spelling; the others stay out, so that the validator reports them.
   */
  readonly named?: Iterable<string>;
}

/** Action ids by comparison key: which spelling the schema (and every request) uses. */
export interface ActionTable {
  readonly ids: ReadonlyMap<string, string>;
  /** Concrete actions with their parents, in table spelling. */
  readonly concrete: ReadonlyMap<string, readonly string[]>;
  readonly groups: ReadonlySet<string>;
}

function configActions(config: WritConfig): string[] {
  const out: string[] = [];
  const add = (action: string) => {
    try {
      out.push(...concreteActions(compileRule({ action, resource: "*" })));
    } catch (err) {
      if (!isWritError(err)) throw err;
    }
  };
  for (const rc of config.runnerClasses.values()) {
    for (const r of [...rc.ceiling.allow, ...rc.ceiling.deny]) add(r.rule.text.action);
  }
  for (const agent of config.agents.values()) {
    for (const g of agent.baseline) add(g.rule.text.action);
    for (const d of agent.deny) add(d.rule.text.action);
    for (const t of agent.tools) add(t.text.action);
  }
  for (const pb of config.playbooks.values()) {
    for (const g of pb.grants) if (!g.action.includes("${")) add(g.action);
  }
  return out;
}

function actionIsKnown(id: string, vocab: Vocabulary): boolean {
  try {
    return actionProblems(compileRule({ action: id, resource: "*" }), vocab).length === 0;
  } catch (err) {
    if (isWritError(err)) return false;
    throw err;
  }
}

export function actionTable(config: WritConfig, opts: SchemaOptions = {}): ActionTable {
  const vocab = opts.vocab ?? {};
  const ids = new Map<string, string>();
  const concrete = new Map<string, string[]>();
  const groups = new Set<string>();
  const spell = (id: string): string => {
    const key = actionKey(id);
    const have = ids.get(key);
    if (have !== undefined) return have;
    ids.set(key, id);
    return id;
  };
  const addGroup = (id: string) => {
    const group = parseGroup(id);
    if (!group || (group.service !== undefined && !actionIsKnown(`${id}:*`, vocab))) return;
    if (group.service !== undefined) addGroup(group.provider);
    groups.add(spell(id));
  };
  const addConcrete = (id: string, preferred: boolean) => {
    const a = parseAction(id);
    if (!a || !actionIsKnown(id, vocab)) return;
    const name = spell(preferred ? id : canonicalAction(a, vocab));
    if (concrete.has(name)) return;
    const parents = actionParents(a);
    concrete.set(name, []);
    // GitHub levels below this one are actions too: the schema must declare what it points to
    for (const p of parents.slice(2)) addConcrete(p, false);
    for (const p of parents.slice(0, 2)) addGroup(p);
    concrete.set(
      name,
      parents.map((p) => ids.get(actionKey(p)) ?? p),
    );
  };
  // the guardrails' own spellings first
  for (const id of opts.named ?? []) {
    addGroup(id);
    addConcrete(id, true);
  }
  for (const id of configActions(config)) addConcrete(id, false);
  return { ids, concrete, groups };
}

const STRING = { type: "String" } as const;
const LONG = { type: "Long" } as const;

function commonTypes() {
  return {
    LocalTime: {
      type: "Record",
      attributes: { timezone: STRING, hour: LONG, minute: LONG, weekday: STRING },
    },
    Time: {
      type: "Record",
      attributes: {
        unix: LONG,
        iso: STRING,
        hour: LONG,
        minute: LONG,
        weekday: STRING,
        local: { type: "LocalTime" },
      },
    },
    Context: {
      type: "Record",
      attributes: {
        environment: STRING,
        time: { type: "Time" },
        tainted: { type: "Boolean" },
        ticket: { ...STRING, required: false },
        writId: { ...STRING, required: false },
        promptContextId: { ...STRING, required: false },
      },
    },
  };
}

export function schemaFromTable(table: ActionTable): SchemaJson<string> {
  const actions: Record<string, object> = {};
  for (const g of table.groups) {
    const group = parseGroup(g);
    actions[g] =
      group?.service === undefined ? {} : { memberOf: [{ id: table.ids.get(actionKey(group.provider)) }] };
  }
  for (const [id, parents] of table.concrete) {
    actions[id] = {
      memberOf: parents.map((p) => ({ id: p })),
      appliesTo: { principalTypes: ["Agent"], resourceTypes: ["Resource"], context: { type: "Context" } },
    };
  }
  return {
    [NAMESPACE]: {
      commonTypes: commonTypes(),
      entityTypes: {
        Agent: {
          shape: {
            type: "Record",
            attributes: {
              owner: STRING,
              purpose: STRING,
              runnerClass: STRING,
              environments: { type: "Set", element: STRING },
            },
          },
        },
        Resource: {
          shape: { type: "Record", attributes: { provider: STRING, service: STRING, id: STRING } },
        },
      },
      actions,
    },
  } as SchemaJson<string>;
}

/** The Cedar schema (JSON form) for a config's guardrails. */
export function cedarSchemaFor(config: WritConfig, opts: SchemaOptions = {}): SchemaJson<string> {
  return schemaFromTable(actionTable(config, opts));
}
