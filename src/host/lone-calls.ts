import type { FrameChannel, TickEnd } from './frame-channel.js';
import type { HostChild } from './host-child.js';
import { ReaderAway, executeFrame, markAlone } from './protocol.js';
import type { SharedLane } from './shared-lane.js';
import { hostTuning } from './tuning.js';

const WAKE_BYTE = Buffer.of(1);
// How long frames may wait behind a call the host's reader expected to be quick (the shortest timer the event loop has).
const QUICK_CALL_PATIENCE_MS = 1;

/**
 * How a call goes out (docs/host-protocol.md, "A call's states"): a call made with nothing in flight
 * waits for the end of its tick; still alone then, it takes the shared lane or goes as EXECUTE_ALONE;
 * joined by another call, it goes first as a plain EXECUTE. While a call may be running on the
 * host's reader, frames written after it wake the standby (rule 7): after each tick's frames when the
 * lane's READER_AWAY says so, or, before the lane is watched, after every frame while a lone call is pending.
 */
export class LoneCallPolicy implements TickEnd {
  /** Set once the host runs workers (CONFIGURE): a lone call then runs on its reader. */
  pooled = false;
  private loneCandidate: { id: number; context: string } | undefined;
  private aloneId: number | undefined;
  // Frames atTickEnd wrote for the lone call itself this tick: they need no standby.
  private ownFrames = 0;
  private awayWatched = 0;
  private awayTimer: NodeJS.Timeout | undefined;
  private wakeClosed = false;
  private readonly markLone = hostTuning.loneCalls;

  constructor(
    private readonly child: HostChild,
    private readonly frames: FrameChannel,
    private readonly lane: SharedLane,
    private readonly pending: { has(id: number): boolean },
  ) {
    // EPIPE: the host closed fd 5 because it runs no standby reader.
    child.wake.on('error', () => (this.wakeClosed = true));
  }

  /** Sends a call already pending; one made `alone` waits for the end of the tick instead. */
  send(id: number, context: string, alone: boolean, wake: (() => void) | undefined): void {
    this.frames.corkUntilTick(this);
    // Calls that come in a batch (many callers answering one batch of results) are not alone.
    const joined = this.loneCandidate;
    this.loneCandidate = undefined;
    if (joined) this.frames.send(executeFrame(joined.id, joined.context));
    if (alone) this.loneCandidate = { id, context };
    else this.frames.send(executeFrame(id, context), wake);
  }

  // While a lone call may be running on the host's reader, a frame must wake the standby once it is written.
  standbyWake(): (() => void) | undefined {
    if (this.aloneId === undefined || !this.pending.has(this.aloneId) || this.wakeClosed) return undefined;
    return () => this.wakeStandby();
  }

  // With a watched lane: the tick's frames are in the socket; if the reader is away on a call, they need
  // the standby. The host says it is away before it looks for input, so one of the two sees the other.
  // Behind a quick call they wait for the reader, unless the same trip away still lasts a timer later.
  afterTick(frames: number): void {
    const others = frames - this.ownFrames;
    this.ownFrames = 0;
    if (others <= 0 || !this.pooled) return;
    const away = this.lane.readerAway();
    const state = away & 3;
    if (state === ReaderAway.SLOW_CALL) this.wakeStandby();
    else if (state === ReaderAway.QUICK_CALL) this.wakeIfStillAway(away);
  }

  private wakeIfStillAway(away: number): void {
    // The trip the latest frames wait behind: a trip that ended took them, and a later one has frames of its own to watch.
    this.awayWatched = away;
    this.awayTimer ??= setTimeout(() => {
      this.awayTimer = undefined;
      if (this.lane.readerAway() === this.awayWatched) this.wakeStandby();
    }, QUICK_CALL_PATIENCE_MS).unref();
  }

  /** The host is gone: nothing is left to wake. */
  close(): void {
    if (this.awayTimer) clearTimeout(this.awayTimer);
    this.awayTimer = undefined;
  }

  private wakeStandby(): void {
    if (!this.wakeClosed && !this.child.exit) this.child.wake.write(WAKE_BYTE);
  }

  /** At the end of a tick of calls: a call still alone takes the lane, or goes as EXECUTE_ALONE or EXECUTE. */
  atTickEnd(): void {
    const lone = this.loneCandidate;
    this.loneCandidate = undefined;
    if (!lone || !this.pending.has(lone.id)) return;
    const before = this.frames.bytesSent;
    // A watched lane says when the reader is away (afterTick); until then, frames after a lone call wake the standby.
    const watched = this.lane.watched;
    if (this.lane.post(lone.id, lone.context)) {
      // Like EXECUTE_ALONE: a pooled host runs it on its reader, so further frames must wake the standby.
      if (this.pooled && !watched) this.aloneId = lone.id;
      if (this.frames.bytesSent !== before) this.ownFrames = 1;
      return;
    }
    const frame = executeFrame(lone.id, lone.context);
    // A pooled host runs it on its reader; further frames then wake the standby.
    if (this.pooled && this.markLone) {
      markAlone(frame);
      if (!watched) this.aloneId = lone.id;
    }
    this.ownFrames = 1;
    this.frames.send(frame);
  }
}
