// Raw koffi on a plugin library, as a caller without skillplug would use it: the benchmark's baseline.
import koffi from 'koffi';

/** The library's execute through koffi, sync and `.async()`, each freeing the result and parsing it as JSON. */
export interface RawKoffiCalls {
  sync(ctx: string): unknown;
  async(ctx: string): Promise<unknown>;
}

/** Loads `libraryPath` with koffi (in a process where skillplug may have configured koffi already). */
export function rawKoffiCalls(libraryPath: string): RawKoffiCalls {
  const lib = koffi.load(libraryPath);
  const execute = lib.func('void *vtcode_plugin_execute(const char *ctx)');
  const free = lib.func('void vtcode_plugin_free_string(void *s)');
  const take = (ptr: unknown): unknown => {
    const text = koffi.decode(ptr, 'char', -1) as string;
    free(ptr);
    return JSON.parse(text);
  };
  return {
    sync: (ctx) => take(execute(ctx)),
    async: (ctx) =>
      new Promise((resolve, reject) =>
        execute.async(ctx, (err: Error | null, ptr: unknown) => {
          if (err) reject(err);
          else resolve(take(ptr));
        }),
      ),
  };
}
