// Media Source Extensions playback of the ltx2stream fMP4 stream (see docs/clients.md, "MSE playback").
//
// One MediaSource with one SourceBuffer in "segments" mode: the server's fragments carry absolute decode times
// (tfdt), so they are appended as they come and land where they belong. Every SourceBuffer operation goes
// through one queue pumped on `updateend` (only one may be in flight). The player also
//  * seeks to the first buffered time when the playhead sits before it (a late or resumed start),
//  * jumps gaps on `waiting` (Chromium does not),
//  * catches up to the live edge when playback falls more than `maxLagS` behind the newest media,
//  * drops media older than `keepBehindS` behind the playhead, and on QuotaExceededError evicts what it can
//    and retries the append,
//  * continues one timeline across reconnects: a resumed connection's stream starts again at t=0, so its
//    fragments get a timestampOffset that places them after the last complete segment received before.

const EPS = 0.05;
const GAP_LOOKAHEAD_S = 0.25;  // a range ending closer than this ahead of a stalled playhead counts as a hole

function ranges(tr) {
  const out = [];
  for (let i = 0; i < tr.length; i++) out.push([tr.start(i), tr.end(i)]);
  return out;
}

export class MsePlayer extends EventTarget {
  constructor(video, { catchUp = true, maxLagS = 10, targetLagS = 1, keepBehindS = 30 } = {}) {
    super();
    this.video = video;
    this.options = { catchUp, maxLagS, targetLagS, keepBehindS };
    this.ms = null;
    this.objectUrl = null;
    video.addEventListener("waiting", () => this.jumpGap());
    video.addEventListener("timeupdate", () => this.onTime());
    this.lastTime = -1;
    this.watchdog = setInterval(() => this.checkStall(), 500);
    this.reset();
  }

  /** Start a new, empty timeline (a new session). */
  reset() {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.ms = new MediaSource();
    this.sb = null;
    this.mime = null;
    this.ops = [];
    this.offset = 0;         // seconds added to the server's timestamps (sb.timestampOffset)
    this.rebase = 0;         // timeline position where the next connection's first fragment goes (null: set)
    this.segStart = new Map();  // segment index -> timeline start (a keyframe)
    this.segEnd = new Map();    // segment index -> timeline end, once its last fragment arrived
    this.stats = { fragments: 0, bytes: 0, evictions: 0, quotaErrors: 0, catchUps: 0, gapJumps: 0, errors: [] };
    this.started = false;
    this.waitingForRoom = false;
    this.objectUrl = URL.createObjectURL(this.ms);
    this.video.src = this.objectUrl;
    this.ms.addEventListener("sourceopen", () => this.pump(), { once: true });
  }

  /** A new connection of the same session begins; `resumedFrom` is accepted.resumed_from_segment (or null). */
  beginConnection(resumedFrom) {
    let base = this.completeEnd();
    if (resumedFrom !== null && resumedFrom !== undefined) {
      if (this.segEnd.has(resumedFrom)) base = this.segEnd.get(resumedFrom);
      for (const map of [this.segStart, this.segEnd]) {
        for (const index of [...map.keys()]) if (index > resumedFrom) map.delete(index);
      }
    }
    this.rebase = base;
    // a partly received segment is generated again after a resume: drop what we have of it
    this.ops.push({ kind: "remove", start: base, end: Infinity });
    this.pump();
  }

  /** End of the last complete segment on the timeline (0 before any). */
  completeEnd() {
    return this.segEnd.size ? Math.max(...this.segEnd.values()) : 0;
  }

  /** The `media_init` message: create the SourceBuffer on the first one, append it before any media. */
  init(mime, data) {
    if (!("MediaSource" in window) || !MediaSource.isTypeSupported(mime)) {
      throw new Error(`this browser cannot play ${mime} through Media Source Extensions`);
    }
    if (this.mime !== null && this.mime !== mime) this.ops.push({ kind: "changeType", mime });
    this.mime = mime;
    this.ops.push({ kind: "append", data, init: true });
    this.pump();
  }

  /** A `media` message: one moof+mdat fragment with its session times. */
  media(msg) {
    if (this.rebase !== null) {
      this.offset = this.rebase - msg.t0;
      this.rebase = null;
      this.ops.push({ kind: "offset", value: this.offset });
    }
    const start = msg.t0 + this.offset;
    if (!this.segStart.has(msg.segment)) this.segStart.set(msg.segment, start);
    if (msg.last) this.segEnd.set(msg.segment, start + msg.duration);
    this.ops.push({ kind: "append", data: msg.data, segment: msg.segment });
    this.pump();
  }

  /** The session ended: mark the end of the stream once everything queued is appended. */
  end() {
    this.ops.push({ kind: "eos" });
    this.pump();
  }

  /** The segment playing at the playhead (null if unknown). */
  segmentAt(t = this.video.currentTime) {
    let best = null;
    for (const [index, start] of this.segStart) if (start <= t + 1e-3 && (best === null || index > best)) best = index;
    return best;
  }

  // ---- the operation queue ---------------------------------------------------------------------------------

  pump() {
    const ms = this.ms;
    if (ms.readyState === "closed") return;
    while (this.ops.length) {
      if (this.sb && this.sb.updating) return;
      const op = this.ops[0];
      if (!this.sb) {
        if (this.mime === null) return;  // wait for media_init
        const sb = ms.addSourceBuffer(this.mime);
        sb.mode = "segments";
        sb.addEventListener("updateend", () => { if (sb === this.sb) this.onUpdateEnd(); });  // not after reset()
        sb.addEventListener("error", () => { if (sb === this.sb) this.fail("SourceBuffer error"); });
        this.sb = sb;
      }
      try {
        if (this.run(op) === "wait") return;
      } catch (e) {
        if (e.name === "QuotaExceededError") {
          this.onQuota();
          return;
        }
        this.ops.shift();
        this.fail(`${op.kind}: ${e.name}: ${e.message}`);
        continue;
      }
      this.ops.shift();
      if (this.sb.updating) return;  // an append or remove started; updateend pumps again
    }
  }

  run(op) {
    const sb = this.sb;
    switch (op.kind) {
      case "append":
        sb.appendBuffer(op.data);
        this.stats.bytes += op.data.byteLength;
        if (!op.init) this.stats.fragments += 1;
        return "started";
      case "remove": {
        const end = Math.min(op.end, this.bufferedEnd());
        if (this.ms.readyState === "open" && end - op.start > EPS && op.start < this.ms.duration) {
          sb.remove(op.start, op.end);
        }
        return "done";
      }
      case "offset":
        sb.timestampOffset = op.value;
        return "done";
      case "changeType":
        sb.changeType(op.mime);
        return "done";
      case "eos":
        if (this.ms.readyState === "open") this.ms.endOfStream();
        return "done";
      default:
        throw new Error(`unknown operation ${op.kind}`);
    }
  }

  onUpdateEnd() {
    this.startPlayback();
    this.trimBehind();
    this.catchUp();
    this.dispatchEvent(new Event("update"));
    this.pump();
  }

  /** QuotaExceededError: evict what is behind the playhead and retry; if nothing can go, retry as time moves. */
  onQuota() {
    this.stats.quotaErrors += 1;
    const cut = this.keyframeAtOrBefore(this.video.currentTime - 1);
    if (cut !== null && cut - this.bufferedStart() > EPS) {
      this.stats.evictions += 1;
      this.ops.unshift({ kind: "remove", start: 0, end: cut });
      this.pump();
    } else {
      this.waitingForRoom = true;  // everything buffered is ahead of the playhead; onTime() retries
    }
  }

  // ---- playback policy -------------------------------------------------------------------------------------

  startPlayback() {
    const v = this.video;
    const buffered = ranges(v.buffered);
    if (!buffered.length) return;
    if (v.currentTime < buffered[0][0]) v.currentTime = buffered[0][0];  // a late or resumed start
    if (!this.started) {
      this.started = true;
      v.play().catch((e) => {
        if (e.name !== "NotAllowedError") return;
        v.muted = true;  // autoplay with sound needs a user gesture; muted autoplay is always allowed
        v.play().catch(() => {});
      });
    }
  }

  /** Remove media more than keepBehindS behind the playhead, cut at a keyframe (a segment start). */
  trimBehind() {
    const keep = this.options.keepBehindS;
    const start = this.bufferedStart();
    if (start === null || this.video.currentTime - start < keep + 10) return;
    const cut = this.keyframeAtOrBefore(this.video.currentTime - keep);
    if (cut !== null && cut - start > EPS) {
      this.stats.evictions += 1;
      this.ops.push({ kind: "remove", start: 0, end: cut });
    }
  }

  catchUp() {
    const { catchUp, maxLagS, targetLagS } = this.options;
    const end = this.bufferedEnd();
    const v = this.video;
    if (!catchUp || end === null || !this.started || v.paused) return;
    if (end - v.currentTime > maxLagS) {
      this.stats.catchUps += 1;
      v.currentTime = Math.max(end - targetLagS, this.bufferedStart());
    }
  }

  /**
   * On `waiting` (and from the stall watchdog): if the playhead sits in a hole, or so close to the end of its
   * range that the next frame cannot be complete, and later media exists, jump to that media. Holes appear at a
   * resume point, where the AAC frames the old connection's encoder still held are lost with it.
   */
  jumpGap() {
    const v = this.video;
    const t = v.currentTime;
    const all = ranges(v.buffered);
    for (let i = 0; i < all.length; i++) {
      const [start, end] = all[i];
      const inside = start <= t + EPS && t < end;
      if (inside && (end - t > GAP_LOOKAHEAD_S || i === all.length - 1)) return;  // waiting for decode or data
      const next = inside ? all[i + 1] : start > t ? all[i] : null;
      if (next) {
        this.stats.gapJumps += 1;
        v.currentTime = next[0] + 0.01;
        return;
      }
    }
  }

  /** Called twice a second: playback that should run but has not moved is treated like `waiting`. */
  checkStall() {
    const v = this.video;
    const t = v.currentTime;
    if (!v.paused && !v.ended && v.readyState < HTMLMediaElement.HAVE_FUTURE_DATA && t === this.lastTime) {
      this.jumpGap();
    }
    this.lastTime = t;
  }

  onTime() {
    if (this.waitingForRoom) {
      this.waitingForRoom = false;
      this.onQuota();
      if (!this.waitingForRoom) return;
    }
    this.catchUp();
  }

  // ---- helpers ---------------------------------------------------------------------------------------------

  keyframeAtOrBefore(t) {
    let best = null;
    for (const start of this.segStart.values()) if (start <= t && (best === null || start > best)) best = start;
    return best;
  }

  bufferedStart() {
    const b = this.video.buffered;
    return b.length ? b.start(0) : null;
  }

  bufferedEnd() {
    const b = this.video.buffered;
    return b.length ? b.end(b.length - 1) : null;
  }

  fail(text) {
    this.stats.errors.push(text);
    this.dispatchEvent(new CustomEvent("error", { detail: text }));
  }

  /** A JSON-ready picture of the playback (shown on the page and read by tests). */
  status() {
    const v = this.video;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    const end = this.bufferedEnd();
    return {
      currentTime: v.currentTime, paused: v.paused, readyState: v.readyState, muted: v.muted,
      buffered: ranges(v.buffered), lag: end === null ? null : Math.max(end - v.currentTime, 0),
      decodedFrames: q ? q.totalVideoFrames : null, droppedFrames: q ? q.droppedVideoFrames : null,
      mediaError: v.error ? `${v.error.code}: ${v.error.message}` : null, mime: this.mime,
      pending: this.ops.length, segment: this.segmentAt(), ...this.stats, errors: [...this.stats.errors],
    };
  }
}
