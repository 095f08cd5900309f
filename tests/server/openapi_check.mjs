// Checks confab-server responses against docs/openapi.json: the route (path template + method),
// the status, the media type, required headers, the JSON body and each SSE event. helpers.mjs
// runs every fetch() to a server it started through checkResponse(), so the document cannot drift
// from what the server test suite sees.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DOC_PATH = path.resolve(here, '../../docs/openapi.json');
export const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8'));

const DOC_ID = 'confab-openapi';
// strict off: the document holds OpenAPI keywords (discriminator, example) Ajv does not know.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, DOC_ID);

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// A JSON pointer (#/a/b) of the document to its value.
function at(pointer) {
  let v = doc;
  for (const part of pointer.replace(/^#\//, '').split('/')) {
    v = v?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (v === undefined) throw new Error(`openapi.json: ${pointer} does not exist`);
  return v;
}
// Follows a non-schema $ref (responses, parameters, headers) to its object.
export function deref(obj) {
  let v = obj;
  for (let i = 0; v?.$ref && i < 10; i++) v = at(v.$ref);
  return v;
}
const pointerOf = (...parts) => '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

const validators = new Map();
// An Ajv validator for the schema at `pointer` (compiled once).
function validatorAt(pointer) {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: DOC_ID + '#' + pointer.slice(1).split('/').map(encodeURIComponent).join('/') });
    validators.set(pointer, v);
  }
  return v;
}

function schemaErrors(validate) {
  return ajv.errorsText(validate.errors, { separator: '; ', dataVar: 'body' });
}

// ---- routes

function segmentRegex(seg) {
  // "{param}" or "v{version}": each template part matches one or more characters of one segment.
  return seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
}
const templates = Object.keys(doc.paths).map((template) => {
  const segs = template.split('/').slice(1);
  return {
    template,
    regex: new RegExp('^/' + segs.map(segmentRegex).join('/') + '$'),
    // Literal segments outrank partly templated ones, which outrank parameters, from the left:
    // the server routes /v1/workflows/runs/x to the run, not to workflow "runs".
    rank: segs.map((s) => (!s.includes('{') ? 2 : s.startsWith('{') && s.endsWith('}') && s.indexOf('{', 1) < 0 ? 0 : 1)),
  };
});

// The documented path template the server routes `decodedPath` to, or undefined.
export function matchPath(decodedPath) {
  let best;
  for (const t of templates) {
    if (!t.regex.test(decodedPath)) continue;
    if (!best) { best = t; continue; }
    for (let i = 0; i < Math.min(best.rank.length, t.rank.length); i++) {
      if (t.rank[i] !== best.rank[i]) {
        if (t.rank[i] > best.rank[i]) best = t;
        break;
      }
    }
  }
  return best?.template;
}

// The server percent-decodes the path before routing (request_head.cpp split_target).
export function decodePath(rawPath) {
  return rawPath.replace(/%([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

export function documentedMethods(template) {
  return Object.keys(doc.paths[template]).filter((k) => METHODS.includes(k)).map((m) => m.toUpperCase());
}

// ---- SSE events

const eventCatalogs = new Map();
// event type -> pointer of the event schema, from an x-sse-event schema's oneOf.
function eventCatalog(pointer) {
  let cat = eventCatalogs.get(pointer);
  if (cat) return cat;
  cat = new Map();
  let schema = at(pointer);
  let p = pointer;
  if (schema.$ref) { p = schema.$ref; schema = at(p); }
  for (const branch of schema.oneOf ?? [schema]) {
    const bp = branch.$ref ?? p;
    const name = at(bp).properties?.event?.const;
    if (name) cat.set(name, bp);
  }
  eventCatalogs.set(pointer, cat);
  return cat;
}

// Parses SSE text incrementally; calls onEvent({event, id, data}) per dispatched event.
export class SseScanner {
  constructor(onEvent) { this.buf = ''; this.cur = { data: [] }; this.onEvent = onEvent; }
  // Linear in the text: lines are cut by index, the unfinished rest kept for the next chunk.
  push(text) {
    const buf = this.buf + text;
    let start = 0;
    for (;;) {
      const lf = buf.indexOf('\n', start);
      const cr = buf.indexOf('\r', start);
      const nl = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      // A CR at the very end may be the first half of CRLF: wait for the next chunk.
      if (nl < 0 || (nl === cr && nl === buf.length - 1)) break;
      this.line(buf.slice(start, nl));
      start = nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1);
    }
    this.buf = buf.slice(start);
  }
  line(line) {
    if (line === '') {
      if (this.cur.data.length) this.onEvent({ event: this.cur.event ?? 'message', id: this.cur.id, data: this.cur.data.join('\n') });
      this.cur = { data: [] };
    } else if (!line.startsWith(':')) {
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.cur.data.push(value);
      else if (field === 'event') this.cur.event = value;
      else if (field === 'id') this.cur.id = value;
    }
  }
}

// ---- responses

// What the document says about (method, url, status, content type): returns
// { problems: [], sse: {pointer} | null }. Body checks need the text (JSON) or the events (SSE).
export function locate(method, url, status, headers) {
  const problems = [];
  const u = new URL(url);
  const decoded = decodePath(u.pathname);
  const where = `${method} ${u.pathname} -> ${status}`;
  const template = matchPath(decoded);
  const contentType = (headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!template) {
    return { where, template, unrouted: true, contentType, problems };
  }
  const item = doc.paths[template];
  const opKey = method.toLowerCase();
  const op = item[opKey];
  if (!op) return { where, template, undocumentedMethod: true, contentType, problems };
  const response = op.responses[String(status)];
  if (!response) {
    problems.push(`${where}: status ${status} is not documented for ${method.toUpperCase()} ${template} (documented: ${Object.keys(op.responses).join(', ')})`);
    return { where, template, problems };
  }
  const resolved = deref(response);
  const base = response.$ref ? response.$ref.slice(2).split('/') : ['paths', template, opKey, 'responses', String(status)];
  for (const [name, h] of Object.entries(resolved.headers ?? {})) {
    const header = deref(h);
    const value = headers.get(name);
    if (value === null) {
      if (header.required) problems.push(`${where}: the required header ${name} is missing`);
      continue;
    }
    const hp = h.$ref ? h.$ref + '/schema' : pointerOf(...base, 'headers', name, 'schema');
    const v = validatorAt(hp);
    if (!v(value)) problems.push(`${where}: header ${name}: ${value}: ${schemaErrors(v)}`);
  }
  if (!resolved.content) {
    if (contentType) problems.push(`${where}: a ${contentType} body where the document has none`);
    return { where, template, problems, noBody: true };
  }
  if (!resolved.content[contentType]) {
    problems.push(`${where}: content type '${contentType}' is not documented (documented: ${Object.keys(resolved.content).join(', ')})`);
    return { where, template, problems };
  }
  const mediaPointer = response.$ref
    ? pointerOf(...base, 'content', contentType)
    : pointerOf('paths', template, opKey, 'responses', String(status), 'content', contentType);
  if (contentType === 'text/event-stream') {
    const sse = resolved.content[contentType]['x-sse-event'];
    if (!sse) problems.push(`${where}: the event stream has no x-sse-event schema`);
    return { where, template, problems, ssePointer: mediaPointer + '/x-sse-event' };
  }
  return { where, template, problems, schemaPointer: mediaPointer + '/schema', contentType };
}

// Checks a complete non-stream response; returns a list of problems (empty: as documented).
export function checkBody(method, loc, status, headers, text) {
  const problems = [...loc.problems];
  const { where } = loc;
  if (loc.unrouted || loc.undocumentedMethod) {
    let body;
    try { body = JSON.parse(text); } catch { body = undefined; }
    const code = body?.code;
    if (loc.unrouted) {
      if (status !== 404 || code !== 'not_found') {
        problems.push(`${where}: the path is not in the document, yet the server answered ${status} ${code ?? text.slice(0, 80)} (a route missing from docs/openapi.json?)`);
      }
      return problems;
    }
    const documented = documentedMethods(loc.template);
    if (method === 'OPTIONS') {
      // CORS preflight: every path answers it (described in info.description).
      if (!(status === 204 || (status === 403 && code === 'origin_not_allowed'))) {
        problems.push(`${where}: a preflight answered ${status} ${text.slice(0, 80)}`);
      }
      return problems;
    }
    const mayBeAbsent = documented.some((m) => {
      const r = deref(doc.paths[loc.template][m.toLowerCase()].responses['404']);
      return JSON.stringify(r ?? {}).includes('"not_found"');
    });
    if (mayBeAbsent && status === 404 && code === 'not_found') return problems;
    if (status !== 405 || code !== 'method_not_allowed') {
      problems.push(`${where}: ${method} is not documented for ${loc.template}, yet the server answered ${status} ${code ?? ''} (a method missing from docs/openapi.json?)`);
      return problems;
    }
    const allow = (headers.get('allow') ?? '').split(',').map((s) => s.trim()).filter((s) => s && s !== 'OPTIONS').sort();
    if (allow.join(',') !== [...documented].sort().join(',')) {
      problems.push(`${where}: Allow '${headers.get('allow')}' differs from the documented methods ${documented.join(', ')}`);
    }
    return problems;
  }
  if (loc.noBody) {
    if (text.length) problems.push(`${where}: a body where the document has none: ${text.slice(0, 80)}`);
    return problems;
  }
  if (!loc.schemaPointer) return problems;
  let value = text;
  if (loc.contentType === 'application/json') {
    try { value = JSON.parse(text); } catch (e) {
      problems.push(`${where}: the body is not JSON (${e.message}): ${text.slice(0, 120)}`);
      return problems;
    }
  }
  const v = validatorAt(loc.schemaPointer);
  if (!v(value)) problems.push(`${where}: the body does not match ${loc.schemaPointer}: ${schemaErrors(v)}; body: ${text.slice(0, 300)}`);
  return problems;
}

// Checks one SSE event of a stream located by locate(); returns a problem or null.
export function checkEvent(loc, ev) {
  const cat = eventCatalog(loc.ssePointer);
  const p = cat.get(ev.event);
  if (!p) return `${loc.where}: event type '${ev.event}' is not documented for this stream (documented: ${[...cat.keys()].join(', ')})`;
  let data;
  try { data = JSON.parse(ev.data); } catch { return `${loc.where}: event '${ev.event}' (id ${ev.id}): data is not JSON: ${ev.data.slice(0, 120)}`; }
  const v = validatorAt(p);
  const value = { event: ev.event, data };
  if (ev.id !== undefined) value.id = ev.id;
  if (!v(value)) return `${loc.where}: event '${ev.event}' (id ${ev.id}) does not match ${p}: ${schemaErrors(v)}; data: ${ev.data.slice(0, 200)}`;
  return null;
}

// Checks a JSON request body against the operation's request schema; returns a problem or null.
export function checkRequestBody(method, template, value) {
  const p = pointerOf('paths', template, method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema');
  const v = validatorAt(p);
  return v(value) ? null : `${method} ${template}: the request body does not match ${p}: ${schemaErrors(v)}`;
}
