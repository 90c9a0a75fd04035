/**
 * Opening the store for one verb: store failures become exit 3, anything else goes through the
 * verb's own mapping, and the store is always closed. Its own file, so that verbs which never touch
 * the store (check, explain) do not load it.
 */
import { isStoreFailure, openStore, type Store } from "../store/index.js";
import { CliFailure, EXIT } from "./output.js";

export interface StoreTarget {
  /** The data folder (the embedded database lives in `<data>/pg`). */
  readonly data: string;
  /** PostgreSQL instead of the embedded store. */
  readonly databaseUrl?: string | undefined;
}

export interface WithStoreOptions {
  /** Create the embedded database when missing (default false: reading verbs never create one). */
  readonly create?: boolean;
  /** Maps a failure the verb knows (a refusal) to a CliFailure; store failures are mapped already. */
  readonly mapError?: (err: unknown) => unknown;
}

export async function withStore<T>(
  target: StoreTarget,
  opts: WithStoreOptions,
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  let store: Store | undefined;
  try {
    store = await openStore({
      dataDir: target.data,
      databaseUrl: target.databaseUrl,
      create: opts.create ?? false,
    });
    return await fn(store);
  } catch (err) {
    if (isStoreFailure(err)) throw new CliFailure(err.code, err.message, EXIT.failure);
    throw opts.mapError ? opts.mapError(err) : err;
  } finally {
    await store?.close().catch(() => {});
  }
}
