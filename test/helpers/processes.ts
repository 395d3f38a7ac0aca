// Whether processes exist, for tests that check nothing a plugin started is left behind.

/** True while a process with this pid exists (a zombie counts until it is reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
