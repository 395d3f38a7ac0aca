// One escaper for untrusted text bound for a terminal, on the ground floor so the CLI and the MCP server's log share it.

// C0 controls but tab and newline, DEL, C1 controls (8-bit CSI/OSC among them), bidi overrides and
// isolates, and lone surrogates: what can move the cursor, hide or reorder text, or talk to the terminal.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's whole job
const UNSAFE_WITH_NEWLINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSAFE = new RegExp(`${UNSAFE_WITH_NEWLINES.source}|\\n`, 'g');

/**
 * Untrusted text made safe for a terminal: every character that could drive it is shown as a
 * `\uXXXX` escape, which is also a valid JSON string escape, so JSON text stays JSON with the same
 * value. Newlines are kept only where the text is multi-line by nature (`multiline`).
 */
export function escapeTerminal(text: string, multiline = false): string {
  const pattern = multiline ? UNSAFE_WITH_NEWLINES : UNSAFE;
  pattern.lastIndex = 0;
  if (!pattern.test(text)) return text;
  return text.replace(pattern, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
