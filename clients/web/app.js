// The ltx2stream player page: open a session, play it through MSE, steer it, reconnect and resume it.
//
// Query parameters prefill the form (server, token, prompt, preset, width, height, fps, frames, overlap, seed,
// lookahead, resume) and `autostart=1` opens at once. `window.ltx2.status()` returns the page's whole state
// as plain JSON (used by tests/test_client_web.py and handy in the console).

import { MsePlayer } from "./player.js";
import { CLOSE_CODES, STAGES, parseSeed, sniffImage } from "./protocol.js";
import { Connection } from "./session.js";

const $ = (id) => document.getElementById(id);
const NUMBER_FIELDS = ["width", "height", "frames", "overlap", "lookahead"];
const FORM_FIELDS = ["server", "token", "prompt", "preset", "fps", "seed", ...NUMBER_FIELDS];
const MAX_RECONNECTS = 5;
const MAX_ROWS = 200;

const page = {
  player: null,
  conn: null,
  sessionId: null,
  state: "idle",
  queuePosition: null,
  openParams: null,     // what the last open sent (a reconnect reuses settings and the current prompt)
  currentPrompt: null,  // the prompt the session is heading to (the last acknowledged steer's)
  lastDone: null,       // index of the last segment_done received
  segments: new Map(),  // index -> {prompt, seed, weight, previous, stage, step, total, timings, duration}
  steers: new Map(),    // request id -> {prompt, transition, appliesAt, status}
  errors: [],
  finals: [],
  closes: [],
  snapshots: [],
  reconnects: 0,
  reconnectTimer: null,
};

// ---- logging and rendering ---------------------------------------------------------------------------------

function log(text, kind = "info") {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $("log");
  list.prepend(li);
  while (list.children.length > MAX_ROWS) list.lastChild.remove();
}

function setState(state) {
  page.state = state;
  const pill = $("state");
  pill.textContent = state;
  pill.dataset.state = state;
  const live = page.conn !== null && page.conn.isOpen && page.sessionId !== null;
  const active = live && ["queued", "starting", "running", "paused"].includes(state);
  $("pause").disabled = !(live && state === "running");
  $("resume").disabled = !(live && state === "paused");
  $("snapshot").disabled = !(live && ["running", "paused"].includes(state));
  $("stop").disabled = !active;
  $("steer-send").disabled = !active;
  $("reconnect").disabled = page.sessionId === null || live;
}

function segmentRow(index) {
  let row = page.segments.get(index);
  if (!row) {
    row = { index, prompt: "", seed: null, weight: 1, previous: null, stage: null, step: 0, total: 0,
            timings: null, duration: null, media: 0 };
    page.segments.set(index, row);
    for (const old of [...page.segments.keys()].filter((k) => k < index - MAX_ROWS)) page.segments.delete(old);
  }
  return row;
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderSegments();
    renderSteers();
    renderPlayback();
  });
}

function renderSegments() {
  const body = $("segments").tBodies[0];
  body.replaceChildren();
  const playing = page.player ? page.player.segmentAt() : null;
  for (const row of [...page.segments.values()].reverse()) {
    const tr = body.insertRow();
    if (row.index === playing) tr.className = "playing";
    const prompt = row.previous ? `${row.prompt} (${fmt(row.weight, 2)}) ← ${row.previous}` : row.prompt;
    const progress = row.timings ? "done" : row.stage ? `${row.stage} ${row.step}/${row.total}` : "started";
    const timings = row.timings
      ? STAGES.filter((s) => row.timings[s] > 0).map((s) => `${s} ${fmt(row.timings[s], 2)}`).join(", ") : "";
    const media = row.duration !== null ? `${fmt(row.duration, 2)} s` : row.media ? `${row.media} frag.` : "";
    for (const text of [row.index, prompt, String(row.seed ?? ""), progress, timings, media]) {
      tr.insertCell().textContent = text;
    }
    if (!row.timings && row.total) {
      const bar = document.createElement("progress");
      bar.max = row.total;
      bar.value = row.step;
      tr.cells[3].append(" ", bar);
    }
  }
}

function renderSteers() {
  const list = $("steers");
  list.replaceChildren();
  for (const [id, s] of [...page.steers.entries()].reverse()) {
    const li = document.createElement("li");
    li.className = s.status;
    const at = s.appliesAt === null ? "waiting for ack" : `applies at segment ${s.appliesAt}`;
    li.textContent = `#${id} ${s.transition}${s.transition === "blend" ? ` ×${s.blendSegments}` : ""} ` +
      `"${s.prompt}": ${at} — ${s.status}${s.error ? ` (${s.error})` : ""}`;
    list.append(li);
  }
}

function renderPlayback() {
  const s = page.player ? page.player.status() : null;
  $("queue").textContent = page.queuePosition !== null && page.state === "queued"
    ? `queue position ${page.queuePosition}` : "";
  $("session-id").textContent = page.sessionId ?? "";
  if (!s) return;
  const buffered = s.buffered.map(([a, b]) => `${fmt(a, 2)}–${fmt(b, 2)}`).join(" ") || "none";
  $("playback").textContent = `t=${fmt(s.currentTime, 2)} s  segment ${s.segment ?? "–"}  ` +
    `lag ${s.lag === null ? "–" : fmt(s.lag, 2)} s  buffered ${buffered}  frames ${s.decodedFrames ?? "–"} ` +
    `(dropped ${s.droppedFrames ?? "–"})  fragments ${s.fragments}  ${(s.bytes / 1e6).toFixed(2)} MB` +
    (s.evictions ? `  evictions ${s.evictions}` : "") + (s.catchUps ? `  catch-ups ${s.catchUps}` : "");
}

const fmt = (x, digits) => (typeof x === "number" ? x.toFixed(digits) : String(x));

// ---- server messages ---------------------------------------------------------------------------------------

const handlers = {
  accepted(m) {
    page.sessionId = m.session_id;
    $("resume-id").value = m.session_id;
    page.reconnects = 0;
    const resumed = m.resumed_from_segment ?? null;
    page.player.beginConnection(resumed);
    log(`accepted ${m.session_id} (${m.settings.preset} ${m.settings.width}×${m.settings.height} ` +
        `${m.settings.fps} fps${resumed !== null ? `, resumed after segment ${resumed}` : ""}); ${m.mime}`);
    if (!MediaSource.isTypeSupported(m.mime)) error({ code: "client.unsupported_media",
      message: `this browser cannot play ${m.mime}`, fatal: false, retryable: false });
    setState("queued");
  },
  queued(m) {
    page.queuePosition = m.position;
  },
  state(m) {
    log(`state ${m.previous} → ${m.state}${m.reason ? ` (${m.reason})` : ""}`);
    setState(m.state);
  },
  segment_started(m) {
    Object.assign(segmentRow(m.index), { prompt: m.prompt, seed: m.seed, weight: m.weight ?? 1,
                                         previous: m.previous_prompt ?? null });
    for (const s of page.steers.values()) {
      if (s.appliesAt !== null && s.appliesAt <= m.index && s.status === "scheduled") {
        s.status = m.prompt === s.prompt ? "applied" : "superseded";
        s.appliedPrompt = m.prompt;
      }
    }
  },
  progress(m) {
    Object.assign(segmentRow(m.segment), { stage: m.stage, step: m.step, total: m.total });
  },
  media_init(m) {
    try {
      page.player.init(m.mime, m.data);
    } catch (e) {
      error({ code: "client.unsupported_media", message: e.message, fatal: false, retryable: false });
    }
  },
  media(m) {
    segmentRow(m.segment).media += 1;
    page.player.media(m);
  },
  segment_done(m) {
    Object.assign(segmentRow(m.index), { timings: m.timings, duration: m.media_duration });
    page.lastDone = m.index;
  },
  steer_ack(m) {
    const s = page.steers.get(m.request_id);
    if (!s) return;
    s.appliesAt = m.applies_at;
    s.status = "scheduled";
    page.currentPrompt = s.prompt;
    log(`steer #${m.request_id} applies at segment ${m.applies_at}`);
  },
  snapshot_result(m) {
    page.snapshots.push({ segment: m.segment_index, stored: m.stored, bytes: m.data ? m.data.byteLength : 0 });
    const out = $("snapshot-result");
    out.replaceChildren();
    if (m.stored) {
      out.textContent = `stored: session ${m.session_id} after segment ${m.segment_index} (resume by id)`;
    } else if (m.data) {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([m.data], { type: "application/octet-stream" }));
      a.download = `${m.session_id}-seg${m.segment_index}.ltxstate`;
      a.textContent = `download state after segment ${m.segment_index} (${(m.data.byteLength / 1e6).toFixed(2)} MB)`;
      out.append(a);
    }
  },
  error: (m) => error(m),
  final(m) {
    page.finals.push(m);
    log(`final: ${m.reason}, ${m.segments} segment(s)` + (m.error_code ? `, ${m.error_code}` : "") +
        (m.resumable_session_id ? `; resumable as ${m.resumable_session_id}` : ""), m.reason === "stopped" ? "info" : "error");
    if (m.resumable_session_id) $("resume-id").value = m.resumable_session_id;
    setState(m.reason === "stopped" || m.reason === "shutdown" ? "closed" : "failed");
    page.player.end();
  },
};

function error(m) {
  page.errors.push({ code: m.code, message: m.message, fatal: m.fatal, retryable: m.retryable,
                     request_id: m.request_id ?? null });
  const steer = m.request_id !== undefined && m.request_id !== null ? page.steers.get(m.request_id) : null;
  if (steer && steer.status === "sent") {
    steer.status = "refused";
    steer.error = m.code;
  }
  log(`error ${m.code}${m.fatal ? " (fatal)" : ""}${m.retryable ? " (retryable)" : ""}: ${m.message}`, "error");
}

function onMessage(event) {
  const m = event.detail;
  const handler = Object.hasOwn(handlers, m.type) ? handlers[m.type] : null;
  if (handler) handler(m);
  else log(`unknown message type ${m.type}`, "error");
  render();
}

function onClose(event) {
  const { code, reason, final } = event.detail;
  page.closes.push({ code, reason });
  log(`connection closed ${code} ${CLOSE_CODES[code] ?? ""}${reason ? `: ${reason}` : ""}`, code === 1000 ? "info" : "error");
  if (page.conn && event.target === page.conn) {
    if (!final && page.state !== "idle") setState("disconnected");
    else setState(page.state);
    if (shouldReconnect(code, final)) scheduleReconnect();
  }
  render();
}

function shouldReconnect(code, final) {
  if (!$("auto-reconnect").checked || page.sessionId === null) return false;
  if (final) return final.reason === "shutdown" && Boolean(final.resumable_session_id);
  return code !== 1000 && code < 4000;  // lost connection (1006, 1011 keepalive): try again
}

function scheduleReconnect() {
  if (page.reconnects >= MAX_RECONNECTS) {
    log(`giving up after ${MAX_RECONNECTS} reconnect attempts`, "error");
    return;
  }
  const delay = 500 * 2 ** page.reconnects;
  page.reconnects += 1;
  log(`reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${page.reconnects})`);
  page.reconnectTimer = setTimeout(() => reconnect(), delay);
}

// ---- commands ----------------------------------------------------------------------------------------------

function settingsFromForm() {
  const settings = { preset: $("preset").value.trim(), fps: Number($("fps").value), seed: parseSeed($("seed").value) };
  for (const name of ["width", "height", "frames", "overlap"]) settings[name] = Number($(name).value);
  return settings;
}

async function imageFromForm() {
  const file = $("image").files[0];
  if (!file) return undefined;
  const data = new Uint8Array(await file.arrayBuffer());
  const mime = sniffImage(data);
  if (!mime) throw new Error(`${file.name} is not a PNG, JPEG or WebP image`);
  return { data, mime, strength: Number($("image-strength").value), frame: Number($("image-frame").value) };
}

function connect(params) {
  clearTimeout(page.reconnectTimer);
  if (page.conn) page.conn.close(1000, "replaced");
  const conn = new Connection($("server").value.trim(), $("token").value.trim() || undefined);
  page.conn = conn;
  conn.addEventListener("message", (e) => { if (e.target === page.conn) onMessage(e); });
  conn.addEventListener("close", onClose);
  conn.open(params).catch((e) => log(`open failed: ${e.message}`, "error"));
}

async function openSession(event) {
  event?.preventDefault();
  try {
    const resumeId = $("resume-id").value.trim();
    const params = {
      prompt: $("prompt").value.trim(), settings: settingsFromForm(), image: await imageFromForm(),
      lookahead: Number($("lookahead").value),
      resumeFrom: resumeId ? { session_id: resumeId } : undefined,
    };
    const continuing = resumeId !== "" && resumeId === page.sessionId;
    if (!continuing) {
      resetSession();
      page.player.reset();  // a new timeline; a resumed session continues the one it has
    }
    Object.assign(page.player.options, { catchUp: $("catch-up").checked, maxLagS: Number($("max-lag").value) });
    page.openParams = params;
    page.currentPrompt = params.prompt;
    page.reconnects = 0;
    setState("connecting");
    connect(params);
  } catch (e) {
    log(e.message, "error");
  }
}

function reconnect() {
  if (page.sessionId === null || page.openParams === null) return;
  const params = { ...page.openParams, prompt: page.currentPrompt ?? page.openParams.prompt, image: undefined,
                   resumeFrom: { session_id: page.sessionId } };
  setState("connecting");
  log(`resuming session ${page.sessionId}`);
  connect(params);
}

function resetSession() {
  Object.assign(page, { sessionId: null, lastDone: null, queuePosition: null, finals: [], closes: [], errors: [],
                        snapshots: [] });
  page.segments.clear();
  page.steers.clear();
}

function newPlayer() {
  const player = new MsePlayer($("video"));
  player.addEventListener("update", render);
  player.addEventListener("error", (e) => log(`player: ${e.detail}`, "error"));
  return player;
}

function steer(event) {
  event.preventDefault();
  try {
    const transition = $("steer-transition").value;
    const params = { prompt: $("steer-prompt").value.trim(), transition, seed: parseSeed($("steer-seed").value),
                     blendSegments: transition === "blend" ? Number($("steer-blend").value) : undefined };
    const id = page.conn.steer(params);
    page.steers.set(id, { prompt: params.prompt, transition, blendSegments: params.blendSegments, appliesAt: null,
                          status: "sent", error: null });
    render();
  } catch (e) {
    log(`steer: ${e.message}`, "error");
  }
}

function command(name) {
  try {
    if (name === "snapshot") page.conn.snapshot($("snapshot-store").checked);
    else page.conn[name]();
  } catch (e) {
    log(`${name}: ${e.message}`, "error");
  }
}

// ---- setup -------------------------------------------------------------------------------------------------

function defaultServer() {
  if (location.protocol === "http:" || location.protocol === "https:") {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  }
  return "ws://127.0.0.1:8765/ws";
}

function status() {
  return JSON.parse(JSON.stringify({
    state: page.state, sessionId: page.sessionId, queuePosition: page.queuePosition, lastDone: page.lastDone,
    segments: [...page.segments.values()], steers: [...page.steers.entries()].map(([id, s]) => ({ id, ...s })),
    errors: page.errors, finals: page.finals, closes: page.closes, snapshots: page.snapshots,
    reconnects: page.reconnects, player: page.player ? page.player.status() : null,
  }, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
}

function setup() {
  const query = new URLSearchParams(location.search);
  $("server").value = defaultServer();
  for (const name of FORM_FIELDS) if (query.has(name)) $(name).value = query.get(name);
  if (query.has("resume")) $("resume-id").value = query.get("resume");
  $("open-form").addEventListener("submit", openSession);
  $("steer-form").addEventListener("submit", steer);
  for (const name of ["pause", "resume", "snapshot", "stop"]) $(name).addEventListener("click", () => command(name));
  $("reconnect").addEventListener("click", () => { page.reconnects = 0; reconnect(); });
  $("video").addEventListener("timeupdate", render);
  $("catch-up").addEventListener("change", () => { page.player.options.catchUp = $("catch-up").checked; });
  $("max-lag").addEventListener("change", () => { page.player.options.maxLagS = Number($("max-lag").value); });
  page.player = newPlayer();
  window.ltx2 = { status, page };
  setState("idle");
  const prefilled = prefillFromServer(query);
  if (query.get("autostart") === "1") prefilled.then(() => openSession());
}

// When the page is served by ltx2stream, take the preset and its defaults from GET /presets unless the query
// already chose them (so the form matches what this server can run).
async function prefillFromServer(query) {
  if (query.has("preset") || !location.protocol.startsWith("http")) return;
  try {
    let presets = [];
    for (let attempt = 0; attempt < 30 && !presets.length; attempt++) {  // hosts may still be loading
      if (attempt) await new Promise((done) => setTimeout(done, 1000));
      const reply = await fetch("/presets", { cache: "no-store" });
      if (!reply.ok) return;
      presets = await reply.json();
    }
    if (!presets.length) return;
    const list = $("presets");
    list.replaceChildren(...presets.map((p) => Object.assign(document.createElement("option"), { value: p.preset })));
    const p = presets[0];
    $("preset").value = p.preset;
    for (const name of ["width", "height", "fps", "frames", "overlap"]) if (!query.has(name)) $(name).value = p[name];
  } catch (e) {
    log(`presets: ${e.message}`, "error");
  }
}

setup();
