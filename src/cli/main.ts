#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCode, PluginError, asPluginError } from '../errors.js';
import { ExitCode, reportError, stdout, writeOut } from './output.js';
import { packageVersion } from '../version.js';

// Each command's module is imported when it runs, so a quick command does not pay for the others.
const commands = () => import('./commands.js');
const trustCommands = () => import('./trust-commands.js');
const authoringCommands = () => import('./authoring-commands.js');
const permissionCommands = () => import('./permission-commands.js');
const keysCommands = () => import('./keys-commands.js');
const installCommands = () => import('./install-commands.js');

// A function: the trust-flag line is read from COMMAND_OPTIONS, so help cannot drift from what parses.
function helpText(): string {
  return `skillplug: load native-code plugins (VT Code native plugin ABI v1) as skills for AI agents

Usage:
  skillplug list     [--workspace DIR] [--plugins-dir DIR]... [--deep] [--timeout MS] [--json]
  skillplug validate DIR [--deep [--input JSON]] [--sandbox …] [--json]
  skillplug inspect  PLUGIN [--workspace DIR] [--plugins-dir DIR]... [--isolation …] [--sandbox …] [--json]
  skillplug run      PLUGIN [--input JSON | --input-file FILE | --input -] [--config JSON]
                     [--workspace DIR] [--plugins-dir DIR]... [--isolation process|none]
                     [--sandbox auto|required|off] [--timeout MS] [--max-memory MIB]
                     [--max-procs N] [--verbose] [--json]
  skillplug keygen   --out PREFIX [--force]
  skillplug sign     PLUGIN --key FILE
  skillplug verify   PLUGIN --pubkey FILE
  skillplug statement PLUGIN      (writes skillplug-statement.json unsigned, for minisign -Sm)
  skillplug keys     trust FILE.pub | list | untrust KEYID|FILE.pub   [--json]
                     (the keys you trust, in ~/.vtcode/skillplug.json "trusted_keys")
  skillplug trust    [DIR]        skillplug untrust [DIR]
  skillplug grant    NAME [--network] [--unix-sockets] [--read PATH]... [--write PATH]...
  skillplug revoke   NAME [--network] [--unix-sockets] [--read PATH]... [--write PATH]... | --all
  skillplug lock     [--workspace DIR] [--plugins-dir DIR]...
  skillplug new      NAME [--lang c|rust] [--dir DIR] [--description TEXT]
  skillplug build    [DIR] [--out DIR]
  skillplug dev      DIR [--input JSON | --input-file FILE | --input -] [--config JSON] [--once]
                     [--workspace DIR] [--timeout MS] [--isolation …] [--sandbox …]
  skillplug test     [DIR] [--workspace DIR] [--timeout MS] [--isolation …] [--sandbox …]
                     (runs tests/*.json cases: {"input", "config", "expect": {"output" |
                     "schema" | "success": false | "code"}}; TAP on stdout, exit 1 on a failure)
  skillplug serve    [--workspace DIR] [--plugins-dir DIR]... [--isolation …] [--sandbox …]
                     [--timeout MS] [--max-memory MIB] [--max-procs N]  (MCP server on stdio)
                     [--max-message-mb MIB] [--quarantine-cooldown MS]
  skillplug install  DIR [--to DIR] [--force] [--workspace DIR] [--require-signature] [--trusted-key FILE]...
  skillplug uninstall NAME [--from DIR] [--workspace DIR]
                     (install copies a built plugin into ~/.vtcode/plugins, where list and serve find it)
  skillplug demo
  skillplug help | --help | --version

Permissions: a plugin reads the workspace and its own dir, with a private /tmp. Whatever else its
plugin.json "permissions" ask for (network, unix_sockets, fs_read outside the workspace, fs_write)
you grant with "skillplug grant", or for one run (list, inspect, run, dev, serve) with
--grant-network, --grant-unix-sockets, --grant-read PATH, --grant-write PATH (repeatable; serve
grants them to every plugin it serves). A plugin asking for more than granted does not load
(E_PERMISSION_DENIED); the error names the grant command.

Trust flags (${trustFlagCommands().join(', ')}):
--require-signature, --trusted-key FILE (repeatable), --strict. Workspace plugin dirs load only
after "skillplug trust" or when a trusted key signed their skillplug-statement.json. A workspace plugin named like one in ~/.vtcode/plugins is refused
(E_SHADOWING) unless "allow_shadowing" lists it, and never when older (E_ROLLBACK).

PLUGIN is a plugin name found in the trusted dirs or a path to a plugin directory inside one.
Trusted dirs, earlier wins a name clash: each --plugins-dir, <workspace>/.vtcode/plugins,
<workspace>/.agents/plugins, then $VTCODE_HOME/plugins (~/.vtcode/plugins), $VTCODE_DATA/plugins
(~/.local/share/vtcode/plugins), $CODEX_HOME/plugins (~/.codex/plugins), ~/.agents/plugins.
--workspace defaults to the current directory. Agent Plugins (skills/, mcp.json, no library) are
listed as agent-plugin and never run.

Plugins run in an isolated host process by default (--isolation process): a crash, hang or
runaway allocation fails the call, not skillplug. --timeout (default 30000 ms) bounds each call
and each library load (constructors and metadata, in every isolation mode); --max-memory
defaults to 4096 MiB (for the whole plugin where a cgroup can be made), --max-procs (processes
and threads at once) to 512; with bubblewrap installed the host also runs sandboxed (--sandbox auto).
--recycle-after-calls N and --recycle-above-mb MIB (default: half of --max-memory) replace a
host between calls, so a plugin that leaks keeps working; 0 turns either off.
serve: a message over --max-message-mb (default: 64) gets a JSON-RPC error; a plugin that crashed
3 times in a minute is refused for --quarantine-cooldown ms (default 60000, doubling on repeat,
0: until lifted); SIGHUP lifts every quarantine.

Plugin output: dev and run --verbose show what an isolated plugin writes to stderr/stdout as it
arrives, marked "[plugin NAME]"; a line starting <0>…<7> (syslog levels, <6> info, <3> error) is a
log line of that level (docs/abi.md, "Logging").

Exit codes: 0 ok; 1 plugin reported failure / plugin invalid; 2 usage error;
3 plugin could not be loaded; 4 plugin failed while running.
`;
}

type Options = NonNullable<ParseArgsConfig['options']>;

const LOADER_OPTIONS: Options = {
  workspace: { type: 'string' },
  'plugins-dir': { type: 'string', multiple: true },
  json: { type: 'boolean' },
  'require-signature': { type: 'boolean' },
  'trusted-key': { type: 'string', multiple: true },
  strict: { type: 'boolean' },
};

const HOST_OPTIONS: Options = {
  'grant-network': { type: 'boolean' },
  'grant-unix-sockets': { type: 'boolean' },
  'grant-read': { type: 'string', multiple: true },
  'grant-write': { type: 'string', multiple: true },
  isolation: { type: 'string' },
  timeout: { type: 'string' },
  sandbox: { type: 'string' },
  'max-memory': { type: 'string' },
  'max-procs': { type: 'string' },
  'recycle-after-calls': { type: 'string' },
  'recycle-above-mb': { type: 'string' },
};

const COMMAND_OPTIONS: Record<string, Options> = {
  list: { ...LOADER_OPTIONS, ...HOST_OPTIONS, deep: { type: 'boolean' } },
  keygen: { out: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
  sign: { ...LOADER_OPTIONS, key: { type: 'string' } },
  verify: { ...LOADER_OPTIONS, pubkey: { type: 'string', multiple: true } },
  statement: LOADER_OPTIONS,
  keys: { json: { type: 'boolean' } },
  trust: { json: { type: 'boolean' } },
  untrust: { json: { type: 'boolean' } },
  grant: { network: { type: 'boolean' }, 'unix-sockets': { type: 'boolean' }, read: { type: 'string', multiple: true }, write: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  revoke: {
    network: { type: 'boolean' },
    'unix-sockets': { type: 'boolean' },
    read: { type: 'string', multiple: true },
    write: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  lock: LOADER_OPTIONS,
  validate: { json: { type: 'boolean' }, deep: { type: 'boolean' }, input: { type: 'string' }, sandbox: { type: 'string' }, 'max-memory': { type: 'string' } },
  inspect: { ...LOADER_OPTIONS, ...HOST_OPTIONS },
  run: {
    ...LOADER_OPTIONS,
    ...HOST_OPTIONS,
    input: { type: 'string' },
    'input-file': { type: 'string' },
    config: { type: 'string' },
    verbose: { type: 'boolean' },
  },
  serve: { ...LOADER_OPTIONS, ...HOST_OPTIONS, 'max-message-mb': { type: 'string' }, 'quarantine-cooldown': { type: 'string' } },
  new: { lang: { type: 'string' }, dir: { type: 'string' }, description: { type: 'string' }, json: { type: 'boolean' } },
  build: { out: { type: 'string' }, json: { type: 'boolean' } },
  test: Object.fromEntries(Object.entries({ ...LOADER_OPTIONS, ...HOST_OPTIONS }).filter(([flag]) => flag !== 'json')),
  dev: { ...LOADER_OPTIONS, ...HOST_OPTIONS, input: { type: 'string' }, 'input-file': { type: 'string' }, config: { type: 'string' }, once: { type: 'boolean' } },
  install: { ...LOADER_OPTIONS, to: { type: 'string' }, force: { type: 'boolean' } },
  uninstall: { workspace: { type: 'string' }, json: { type: 'boolean' }, from: { type: 'string' } },
  demo: {},
};

/** Commands that take the trust flags (--require-signature, --trusted-key, --strict). */
function trustFlagCommands(): string[] {
  return Object.keys(COMMAND_OPTIONS).filter((command) => 'trusted-key' in (COMMAND_OPTIONS[command] as Options));
}


function parseCommand(command: string, args: string[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: COMMAND_OPTIONS[command] ?? {}, allowPositionals: true, strict: true });
    return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
  } catch (err) {
    throw new PluginError(ErrorCode.USAGE, `${(err as Error).message}. Run "skillplug help" for usage.`);
  }
}

function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) {
    throw new PluginError(ErrorCode.USAGE, `"skillplug ${command}" takes exactly one ${what}, got ${positionals.length}. Run "skillplug help" for usage.`);
  }
  return positionals[0] as string;
}

function positiveFlag(value: string | undefined, flag: string, unit: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw new PluginError(ErrorCode.USAGE, `${flag} takes a positive whole number of ${unit}, got ${JSON.stringify(value)}.`);
  return n;
}

function wholeFlag(value: string | undefined, flag: string, unit: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new PluginError(ErrorCode.USAGE, `${flag} takes a whole number of ${unit} (0 turns it off), got ${JSON.stringify(value)}.`);
  return n;
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsJson = rest.includes('--json');
  try {
    if (command === undefined) {
      // No command is a usage error: help goes to stderr so stdout stays clean for scripts.
      process.stderr.write(helpText());
      return ExitCode.USAGE;
    }
    if (command === 'help' || command === '--help' || command === '-h') {
      await writeOut(helpText());
      return ExitCode.OK;
    }
    if (command === '--version' || command === '-v') {
      await writeOut(`${packageVersion()}\n`);
      return ExitCode.OK;
    }
    if (!(command in COMMAND_OPTIONS)) throw new PluginError(ErrorCode.USAGE, `Unknown command ${JSON.stringify(command)}. Run "skillplug help" for usage.`);
    const { values, positionals } = parseCommand(command, rest);
    const loaderFlags = {
      workspace: values.workspace as string | undefined,
      pluginsDir: values['plugins-dir'] as string[] | undefined,
      isolation: values.isolation as string | undefined,
      sandbox: values.sandbox as string | undefined,
      maxMemoryMb: positiveFlag(values['max-memory'] as string | undefined, '--max-memory', 'MiB'),
      maxProcesses: positiveFlag(values['max-procs'] as string | undefined, '--max-procs', 'processes'),
      timeout: positiveFlag(values.timeout as string | undefined, '--timeout', 'milliseconds'),
      recycleAfterCalls: wholeFlag(values['recycle-after-calls'] as string | undefined, '--recycle-after-calls', 'calls'),
      recycleAboveMb: wholeFlag(values['recycle-above-mb'] as string | undefined, '--recycle-above-mb', 'MiB'),
      requireSignature: values['require-signature'] === true,
      trustedKey: values['trusted-key'] as string[] | undefined,
      strict: values.strict === true,
      json: values.json === true,
      grant: (await permissionCommands()).oneRunGrant(values),
    };
    const noPositionals = (): void => {
      if (positionals.length > 0) throw new PluginError(ErrorCode.USAGE, `"skillplug ${command}" takes no positional arguments.`);
    };
    const optionalDir = (): string | undefined => {
      if (positionals.length > 1) throw new PluginError(ErrorCode.USAGE, `"skillplug ${command}" takes at most one directory.`);
      return positionals[0];
    };
    switch (command) {
      case 'list':
        noPositionals();
        return await (await commands()).listCommand({ ...loaderFlags, deep: values.deep === true });
      case 'keygen':
        noPositionals();
        return await (await trustCommands()).keygenCommand(values.out as string | undefined, { force: values.force === true, json: loaderFlags.json });
      case 'sign':
        return await (await trustCommands()).signCommand(onePositional(command, positionals, 'plugin name or path'), { ...loaderFlags, key: values.key as string | undefined });
      case 'verify':
        return await (await trustCommands()).verifyCommand(onePositional(command, positionals, 'plugin name or path'), { ...loaderFlags, pubkey: values.pubkey as string[] | undefined });
      case 'statement':
        return await (await trustCommands()).statementCommand(onePositional(command, positionals, 'plugin name or path'), loaderFlags);
      case 'keys':
        return await (await keysCommands()).keysCommand(positionals, { json: loaderFlags.json });
      case 'trust':
      case 'untrust':
        return await (await trustCommands()).trustCommand(optionalDir(), command === 'trust', loaderFlags);
      case 'grant':
      case 'revoke':
        return await (await permissionCommands()).grantCommandRun(onePositional(command, positionals, 'plugin name'), command === 'grant', {
          network: values.network === true,
          unixSockets: values['unix-sockets'] === true,
          read: values.read as string[] | undefined,
          write: values.write as string[] | undefined,
          all: values.all === true,
          json: loaderFlags.json,
        });
      case 'lock':
        noPositionals();
        return await (await trustCommands()).lockCommand(loaderFlags);
      case 'validate':
        return await (await commands()).validateCommand(onePositional(command, positionals, 'plugin directory'), { ...loaderFlags, deep: values.deep === true, input: values.input as string | undefined });
      case 'inspect':
        return await (await commands()).inspectCommand(onePositional(command, positionals, 'plugin name or path'), loaderFlags);
      case 'run':
        return await (await commands()).runCommand(onePositional(command, positionals, 'plugin name or path'), {
          ...loaderFlags,
          input: values.input as string | undefined,
          inputFile: values['input-file'] as string | undefined,
          config: values.config as string | undefined,
          verbose: values.verbose === true,
        });
      case 'serve':
        noPositionals();
        // The MCP stream is process.stdout: it gets the CLI's handling of a reader that went away.
        stdout();
        await (await commands()).serveCommand({
          ...loaderFlags,
          maxMessageMb: positiveFlag(values['max-message-mb'] as string | undefined, '--max-message-mb', 'MiB'),
          quarantineMs: wholeFlag(values['quarantine-cooldown'] as string | undefined, '--quarantine-cooldown', 'milliseconds'),
        });
        return ExitCode.OK;
      case 'new':
        return await (await authoringCommands()).newCommand(onePositional(command, positionals, 'plugin name'), {
          lang: values.lang as string | undefined,
          dir: values.dir as string | undefined,
          description: values.description as string | undefined,
          json: loaderFlags.json,
        });
      case 'build':
        return await (await authoringCommands()).buildCommand(optionalDir(), { out: values.out as string | undefined, json: loaderFlags.json });
      case 'dev':
        return await (await authoringCommands()).devCommand(onePositional(command, positionals, 'plugin project directory'), {
          ...loaderFlags,
          input: values.input as string | undefined,
          inputFile: values['input-file'] as string | undefined,
          config: values.config as string | undefined,
          once: values.once === true,
        });
      case 'test':
        return await (await authoringCommands()).testCommand(optionalDir(), loaderFlags);
      case 'install':
        return await (await installCommands()).installCommand(onePositional(command, positionals, 'plugin directory'), { ...loaderFlags, to: values.to as string | undefined, force: values.force === true });
      case 'uninstall':
        return await (await installCommands()).uninstallCommand(onePositional(command, positionals, 'plugin name'), { ...loaderFlags, from: values.from as string | undefined });
      case 'demo':
        noPositionals();
        return await (await import('./demo.js')).demoCommand();
      default:
        throw new PluginError(ErrorCode.USAGE, `Unknown command ${JSON.stringify(command)}.`);
    }
  } catch (err) {
    return reportError(asPluginError(err, ErrorCode.INTERNAL, 'skillplug failed unexpectedly'), wantsJson);
  }
}

// No top-level await: the published bin is this module bundled as CommonJS (scripts/bundle-cli.mjs).
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
