// One WebSocket connection to an ltx2stream server: binary msgpack frames both ways (docs/protocol.md).
//
// Emits `message` (detail: the decoded server message) and `close` (detail: {code, reason, final}) events.
// The page keeps one Connection per attempt; reconnect-and-resume opens a new one with `resume_from`.

import {
  connectionTarget, decodeMessage, encodeMessage, openMessage, pauseMessage, resumeMessage, snapshotMessage,
  steerMessage, stopMessage,
} from "./protocol.js";

export class Connection extends EventTarget {
  constructor(serverUrl, token) {
    super();
    const { url, protocols } = connectionTarget(serverUrl, token);
    this.url = url;
    this.ws = new WebSocket(url, protocols);
    this.ws.binaryType = "arraybuffer";
    this.final = null;
    this.nextRequestId = 1;
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("close", (e) => reject(new Error(`could not connect (close ${e.code})`)),
                               { once: true });
    });
    this.opened.catch(() => {});  // reported through the close event as well
    this.ws.addEventListener("message", (e) => this.onMessage(e));
    this.ws.addEventListener("close", (e) => {
      this.dispatchEvent(new CustomEvent("close", { detail: { code: e.code, reason: e.reason, final: this.final } }));
    });
  }

  onMessage(event) {
    if (typeof event.data === "string") {
      this.protocolError("the server sent a text frame; the protocol uses binary msgpack frames only");
      return;
    }
    let msg;
    try {
      msg = decodeMessage(event.data);
    } catch (e) {
      this.protocolError(`undecodable server message: ${e.message}`);
      return;
    }
    if (msg.type === "final") this.final = msg;
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  protocolError(text) {
    const msg = { type: "error", code: "client.protocol", message: text, retryable: false, fatal: false };
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(msg) {
    if (!this.isOpen) throw new Error("not connected");
    this.ws.send(encodeMessage(msg));
  }

  /** Send `open`; params as for protocol.openMessage. */
  async open(params) {
    await this.opened;
    this.send(openMessage(params));
  }

  /** Send `steer`; returns its request id (echoed by steer_ack or error). */
  steer(params) {
    const requestId = this.nextRequestId++;
    this.send(steerMessage({ ...params, requestId }));
    return requestId;
  }

  snapshot(store) {
    const requestId = this.nextRequestId++;
    this.send(snapshotMessage({ store, requestId }));
    return requestId;
  }

  pause() { this.send(pauseMessage()); }
  resume() { this.send(resumeMessage()); }
  stop() { this.send(stopMessage()); }

  close(code = 1000, reason = "client closed") {
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(code, reason);
  }
}
