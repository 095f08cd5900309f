// A minimal Pusher-protocol-7 client over a raw WebSocket (RFC 6455, text frames, masked), for the
// AirOps edge tests: Node 20 has no WebSocket without a flag, and a raw socket lets a test stop
// reading on purpose (a slow reader).
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export class PusherSocket {
  // Resolves once the handshake is done; `messages` then fills with every decoded Pusher message.
  static async connect(base, { key = 'af9e46318302fccfc6db', origin } = {}) {
    const url = new URL(base);
    const sock = net.connect(Number(url.port), url.hostname);
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const s = new PusherSocket(sock);
    const wsKey = randomBytes(16).toString('base64');
    sock.write(`GET /app/${key}?protocol=7&client=js&version=8.3.0&flash=false HTTP/1.1\r\n` +
      `Host: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${wsKey}\r\nSec-WebSocket-Version: 13\r\n` +
      (origin ? `Origin: ${origin}\r\n` : '') + '\r\n');
    s.status = await s.#handshake();
    return s;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.messages = [];
    this.closed = false;
    this.waiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#parse(); });
    sock.on('close', () => { this.closed = true; this.#wake(); });
    sock.on('error', () => {});
  }

  #handshake() {
    return new Promise((resolve) => {
      const check = () => {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) { if (this.closed) resolve(0); else this.waiters.push(check); return; }
        const head = this.buf.subarray(0, end).toString();
        this.buf = this.buf.subarray(end + 4);
        this.upgraded = / 101 /.test(head.split('\r\n')[0]);
        this.head = head;
        resolve(Number(head.split(' ')[1]));
        if (this.upgraded) this.#parse();
      };
      check();
    });
  }

  #wake() { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  #parse() {
    if (!this.upgraded) { this.#wake(); return; }
    for (;;) {
      if (this.buf.length < 2) break;
      const op = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (this.buf.length < 4) break; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) break; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (this.buf.length < off + len) break;
      const fin = (this.buf[0] & 0x80) !== 0;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (op === 1 || op === 0) {  // a text message, possibly in fragments
        this.partial = op === 1 ? [payload] : [...(this.partial ?? []), payload];
        if (!fin) continue;
        const m = JSON.parse(Buffer.concat(this.partial).toString());
        this.partial = null;
        if (typeof m.data === 'string') { try { m.data = JSON.parse(m.data); } catch { /* plain string */ } }
        this.messages.push(m);
      } else if (op === 8) {
        this.closed = true;
      }
    }
    this.#wake();
  }

  send(obj) { this.sendFrame(JSON.stringify(obj)); }

  // One masked frame of any bytes (opcode 1: text, 2: binary), up to 2^32 - 1 bytes.
  sendFrame(data, opcode = 0x1) {
    const payload = Buffer.from(data);
    const mask = randomBytes(4);
    let head;
    if (payload.length < 126) {
      head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
    } else if (payload.length < 65536) {
      head = Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    } else {
      head = Buffer.alloc(10);
      head[0] = 0x80 | opcode;
      head[1] = 0x80 | 127;
      head.writeUInt32BE(payload.length, 6);
    }
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
    this.sock.write(Buffer.concat([head, mask, body]));
  }

  // The first message (from `from` on) matching `pred`; rejects after `ms` or when the socket closes.
  waitFor(pred, { from = 0, ms = 10000 } = {}) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(this.messages)}`)), ms);
      const check = () => {
        const m = this.messages.slice(from).find(pred);
        if (m) { clearTimeout(timer); resolve(m); return; }
        if (this.closed) { clearTimeout(timer); reject(new Error(`closed; got ${JSON.stringify(this.messages)}`)); return; }
        this.waiters.push(check);
      };
      check();
    });
  }

  async established() {
    const m = await this.waitFor((x) => x.event === 'pusher:connection_established');
    this.socketId = m.data.socket_id;
    return this.socketId;
  }

  async subscribe(channel, auth) {
    const from = this.messages.length;
    this.send({ event: 'pusher:subscribe', data: auth ? { channel, auth } : { channel } });
    return this.waitFor((x) => x.channel === channel &&
      (x.event === 'pusher_internal:subscription_succeeded' || x.event === 'pusher:subscription_error'), { from });
  }

  // Events of `channel` until (and with) its "completed" event.
  async untilCompleted(channel, ms = 15000) {
    await this.waitFor((x) => x.channel === channel && x.event === 'completed', { ms });
    return this.messages.filter((x) => x.channel === channel && !x.event.startsWith('pusher'));
  }

  pauseReading() { this.sock.pause(); }
  close() { this.sock.destroy(); }
}
