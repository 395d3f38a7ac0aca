// The plugin log convention (docs/abi.md "Logging"): lines on stderr, an optional `<N>` level prefix.

/**
 * Severity of a plugin log line: syslog's levels (RFC 5424), which are also MCP's logging levels.
 * A line starting `<0>`…`<7>` has the level at that index of {@link PLUGIN_LOG_LEVELS}.
 */
export type PluginLogLevel = 'emergency' | 'alert' | 'critical' | 'error' | 'warning' | 'notice' | 'info' | 'debug';

/** The levels by their syslog number: `<3>` is `error`, `<6>` is `info`, `<7>` is `debug`. */
export const PLUGIN_LOG_LEVELS: readonly PluginLogLevel[] = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];

/** One line a plugin wrote to stderr or stdout, or skillplug's note that lines were dropped. */
export interface PluginLogEvent {
  /** The plugin's name (plugin.json). */
  plugin: string;
  /** From the line's `<N>` prefix; `info` for a line without one. */
  level: PluginLogLevel;
  /** True when the line used the log API (a `<0>`–`<7>` prefix); false for any other output. */
  structured: boolean;
  /** `plugin` for the plugin's own lines; `skillplug` for the note that lines were dropped over the limit. */
  source: 'plugin' | 'skillplug';
  /**
   * The line without its prefix and newline; invalid UTF-8 arrives as U+FFFD, and a line over
   * {@link MAX_LOG_LINE_CHARS} is cut. Plugin-controlled: escape it before it reaches a terminal.
   */
  message: string;
  /** The line was longer than {@link MAX_LOG_LINE_CHARS} and was cut. */
  truncated: boolean;
  /** On a `skillplug` note: how many lines were dropped (0 on the note that dropping began). */
  dropped?: number;
}

/** Longest line kept, in UTF-16 units; the rest of a longer line is dropped. */
export const MAX_LOG_LINE_CHARS = 4096;
/** Lines a plugin may write at once before the rate limit applies. */
export const LOG_BURST_LINES = 1000;
/** Lines per second a plugin may write beyond the burst; more are dropped and counted. */
export const LOG_LINES_PER_SECOND = 100;
/** Log events each plugin keeps for {@link PluginLogHub.recent}. */
export const RECENT_LOG_EVENTS = 200;

const PREFIX = /^<([0-7])>/;

/** The level, structure and text of one line (no newline). */
export function parseLogLine(line: string): { level: PluginLogLevel; structured: boolean; message: string } {
  const match = PREFIX.exec(line);
  if (!match) return { level: 'info', structured: false, message: line };
  return { level: PLUGIN_LOG_LEVELS[Number(match[1])] as PluginLogLevel, structured: true, message: line.slice(match[0].length) };
}

/**
 * One event as a line for people, marked as the plugin's: `[plugin NAME] text`, with the level when
 * the plugin gave one. Not escaped: the plugin controls the text, so escape the line before display.
 */
export function describeLogEvent(event: PluginLogEvent): string {
  const cut = event.truncated ? ' [cut]' : '';
  if (event.source === 'skillplug') return `[skillplug] plugin ${event.plugin}: ${event.message}`;
  return `[plugin ${event.plugin}${event.structured ? ` ${event.level}` : ''}] ${event.message}${cut}`;
}

/** The log's clock (ms); tests freeze it to make the rate limit deterministic. */
export const logClock = { now: (): number => performance.now() };

/**
 * One plugin's log: splits the text its hosts write into lines, parses them, bounds them (line
 * length, a token bucket of lines), keeps the recent ones and hands each to the listeners.
 */
export class PluginLogHub {
  private readonly listeners = new Set<(event: PluginLogEvent) => void>();
  private readonly kept: PluginLogEvent[] = [];
  private tokens = LOG_BURST_LINES;
  private refilledAt = logClock.now();
  private dropped = 0;

  constructor(
    private readonly plugin: string,
    private readonly sink?: (event: PluginLogEvent) => void,
  ) {}

  /** Calls `listener` with every event from now on; returns the function that stops it. */
  subscribe(listener: (event: PluginLogEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last {@link RECENT_LOG_EVENTS} events, oldest first. */
  recent(): PluginLogEvent[] {
    return [...this.kept];
  }

  /** A line splitter for one host's output (each host has its own partial line). */
  stream(): { push: (text: string) => void; end: () => void } {
    let partial = '';
    let cut = false;
    const line = (text: string, truncated: boolean): void => this.line(text.endsWith('\r') ? text.slice(0, -1) : text, truncated);
    return {
      push: (text) => {
        let start = 0;
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
          const piece = text.slice(start, nl);
          start = nl + 1;
          if (cut) {
            cut = false;
            partial = '';
            continue;
          }
          const whole = partial + piece;
          partial = '';
          line(whole.slice(0, MAX_LOG_LINE_CHARS), whole.length > MAX_LOG_LINE_CHARS);
        }
        if (cut) return;
        partial += text.slice(start);
        // A line that never ends is cut at the limit, and the rest of it is skipped.
        if (partial.length > MAX_LOG_LINE_CHARS) {
          line(partial.slice(0, MAX_LOG_LINE_CHARS), true);
          partial = '';
          cut = true;
        }
      },
      end: () => {
        if (partial !== '' && !cut) line(partial, false);
        partial = '';
        cut = false;
        this.noteDropped();
      },
    };
  }

  private line(text: string, truncated: boolean): void {
    const now = logClock.now();
    this.tokens = Math.min(LOG_BURST_LINES, this.tokens + ((now - this.refilledAt) * LOG_LINES_PER_SECOND) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) {
      if (this.dropped === 0) this.emit(this.note(`more than ${LOG_BURST_LINES} lines at once, then ${LOG_LINES_PER_SECOND} a second: dropping lines`, 0));
      this.dropped++;
      return;
    }
    this.tokens -= 1;
    this.noteDropped();
    this.emit({ plugin: this.plugin, ...parseLogLine(text), source: 'plugin', truncated });
  }

  private noteDropped(): void {
    if (this.dropped === 0) return;
    const count = this.dropped;
    this.dropped = 0;
    this.emit(this.note(`dropped ${count} line${count === 1 ? '' : 's'} over the log limit`, count));
  }

  private note(message: string, dropped: number): PluginLogEvent {
    return { plugin: this.plugin, level: 'warning', structured: false, source: 'skillplug', message, truncated: false, dropped };
  }

  private emit(event: PluginLogEvent): void {
    this.kept.push(event);
    if (this.kept.length > RECENT_LOG_EVENTS) this.kept.shift();
    this.sink?.(event);
    for (const listener of this.listeners) listener(event);
  }
}
