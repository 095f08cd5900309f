// Deterministic inputs of the browser benchmarks (issue 7, items 4 and 5), shared by the runner and
// the pages: a long Markdown chat reply cut into LLM-like tokens, and the SSE byte stream a
// confab-server sends for such a reply (DESIGN.md's wire protocol), cut into 1-4 KB chunks.

// mulberry32: a small seeded PRNG, so every run and every engine sees the same input.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ('the a stream token server client reply chunk render block table list code parser event ' +
  'latency budget widget browser session cache layout frame markdown html safe escape link value ' +
  'request response header status retry backoff signal buffer byte offset index number string ' +
  'function return await promise error result output input message user agent tool schema naïve café').split(' ');

/** A Markdown reply of at least `minChars` characters: headings, paragraphs with emphasis, code
 * spans and links, bullet and numbered lists (some nested), fenced code blocks, tables, quotes. */
export function markdownReply(minChars, seed = 7) {
  const r = rng(seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const words = (n) => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const inline = () => {
    const parts = [];
    for (let i = 0, n = int(8, 20); i < n; i++) {
      const x = r();
      if (x < 0.08) parts.push(`**${words(int(1, 3))}**`);
      else if (x < 0.14) parts.push(`*${words(int(1, 2))}*`);
      else if (x < 0.2) parts.push('`' + pick(WORDS) + '()`');
      else if (x < 0.24) parts.push(`[${words(int(1, 3))}](https://example.com/docs/${pick(WORDS)}?v=${int(1, 99)})`);
      else parts.push(pick(WORDS));
    }
    const s = parts.join(' ');
    return s[0].toUpperCase() + s.slice(1) + '.';
  };
  let out = '';
  let section = 0;
  while (out.length < minChars) {
    section++;
    out += `## ${section}. ${words(int(2, 5))}\n\n`;
    for (let i = 0, n = int(1, 3); i < n; i++) out += `${inline()} ${inline()}\n\n`;
    const kind = section % 5;
    if (kind === 0 || kind === 3) {
      for (let i = 0, n = int(3, 6); i < n; i++) {
        out += `- ${inline()}\n`;
        if (r() < 0.25) for (let j = 1; j <= 2; j++) out += `  ${j}. ${words(int(3, 8))}\n`;
      }
      out += '\n';
    } else if (kind === 1) {
      out += '```js\n';
      for (let i = 0, n = int(4, 10); i < n; i++) {
        out += `const ${pick(WORDS)}${i} = await ${pick(WORDS)}(${int(0, 999)}, "${words(2)}"); // <${pick(WORDS)}>\n`;
      }
      out += '```\n\n';
    } else if (kind === 2) {
      out += '| name | value | note |\n|---|---:|---|\n';
      for (let i = 0, n = int(3, 6); i < n; i++) out += `| \`${pick(WORDS)}\` | ${int(1, 9999)} | ${words(int(2, 5))} |\n`;
      out += '\n';
    } else {
      for (let i = 1, n = int(3, 5); i <= n; i++) out += `${i}. ${inline()}\n`;
      out += `\n> ${inline()}\n\n`;
    }
  }
  return out;
}

/** The first `n` tokens (3-5 characters each, like an LLM's) of a long deterministic reply. */
export function replyTokens(n, seed = 7) {
  const text = markdownReply(n * 5 + 64, seed);
  const r = rng(seed ^ 0x5eed);
  const tokens = [];
  for (let i = 0; tokens.length < n; ) {
    const len = 3 + Math.floor(r() * 3);
    tokens.push(text.slice(i, i + len));
    i += len;
  }
  return tokens;
}

/** The SSE body of a chat reply of `n` tokens as confab-server writes it (event, id, data; a
 * heartbeat comment now and then; the completed event last), and the events it holds. */
export function chatStreamText(n, seed = 11) {
  const tokens = replyTokens(n, seed);
  let s = '';
  let text = '';
  for (let i = 0; i < tokens.length; i++) {
    if (i > 0 && i % 500 === 0) s += ': heartbeat\n\n';
    s += `event: agent-response\nid: ${i + 1}\ndata: ${JSON.stringify({ token: tokens[i] })}\n\n`;
    text += tokens[i];
  }
  s += `event: completed\nid: ${n + 1}\ndata: ${JSON.stringify({ result: text, sessionId: 'ses_0123456789abcdef' })}\n\n`;
  return { body: s, events: n + 1, tokenChars: text.length };
}

/** Cuts bytes into chunks of 1-4 KB (anywhere, also inside a UTF-8 sequence), as a network would. */
export function chunkBytes(bytes, seed = 13) {
  const r = rng(seed);
  const chunks = [];
  for (let i = 0; i < bytes.length; ) {
    const len = 1024 + Math.floor(r() * 3073);
    chunks.push(bytes.subarray(i, Math.min(bytes.length, i + len)));
    i += len;
  }
  return chunks;
}
