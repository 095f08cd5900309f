#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz harness (tests/fuzz/corpus/<name>/) from the inputs of the
unit tests: JSON literals of protocol_test.cpp, streams of sse_test.cpp, Markdown of markdown_test.cpp,
the example configs, and request heads / identities like those of tests/server. Each harness's
control bytes (chunk cuts etc.) are prepended as the harness expects. Run it again after changing a
harness's input format; the files are small and few (at most MAX per harness)."""
import ast
import hashlib
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAX = 40


def cpp_strings(path):
    """The string literals ("..." with escapes, and R"(...)") of a C++ test file, as bytes."""
    text = open(os.path.join(REPO, path), encoding='utf-8').read()
    out = []
    for m in re.finditer(r'R"\((.*?)\)"|"((?:[^"\\\n]|\\.)*)"', text, re.S):
        if m.group(1) is not None:
            out.append(m.group(1).encode())
        else:
            lit = m.group(2)
            try:
                # C escapes (\n, \r, \0, \xEF, \") are close enough to Python's for seeds.
                out.append(ast.literal_eval('b"' + lit.encode('unicode_escape').decode().replace('\\\\', '\\') + '"'))
            except (ValueError, SyntaxError):
                out.append(lit.encode())
    return out


def cuts(n_bytes, *points):
    """The control bytes of fuzz::Input::cuts: a count, then two bytes per cut."""
    b = bytes([len(points)])
    for p in points:
        b += bytes([(p >> 8) & 0xff, p & 0xff])
    return b


def write(name, seeds):
    d = os.path.join(HERE, 'corpus', name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    seen = set()
    for s in seeds:
        h = hashlib.sha1(s).hexdigest()[:16]
        if h in seen or len(s) > 4096:
            continue
        seen.add(h)
        open(os.path.join(d, 'seed-' + h), 'wb').write(s)
        if len(seen) >= MAX:
            break
    print(f'{name}: {len(seen)} seeds')


def main():
    # SSE: streams from the parser's tests, each split at a few places.
    streams = [s for s in cpp_strings('tests/core/sse_test.cpp') if b'\n' in s or b'\r' in s]
    write('sse', [bytes([i & 1]) + cuts(len(s), *sorted({1, len(s) // 2, max(len(s) - 1, 0)})) + s
                  for i, s in enumerate(streams)])

    # Protocol: the JSON documents of the protocol tests.
    docs = []
    for s in cpp_strings('tests/core/protocol_test.cpp'):
        try:
            json.loads(s)
            if s.strip().startswith((b'{', b'[')):
                docs.append(s)
        except ValueError:
            pass
    write('protocol', docs)

    # Markdown: the renderer's test inputs (not its expected HTML), split in three.
    md = [s for s in cpp_strings('tests/core/markdown_test.cpp') if not s.startswith(b'<') and len(s) > 2]
    write('markdown', [cuts(len(s), len(s) // 3, 2 * len(s) // 3) + s for s in md])

    # Transcript: event sequences are control bytes; a few shapes (in order, replayed, gaps).
    tr = []
    for n in range(1, 24, 2):
        ctrl = bytes([n])
        for i in range(n):
            seq = i + 1 if i % 5 else max(i - 1, 0)
            ctrl += bytes([seq, i % 7, (1 << (i % 10)) & 0xff, (i * 37) & 0xff, 3, 5, i & 7])
        tr.append(ctrl + b'hello world, a tool {"q":1} and an error' * 2)
    write('transcript', tr)

    # Identity: "user\npresented" with a leading time byte; user ids of the identity tests.
    ids = [b'alice', b'user-1', b'alice@example.com', b'\xc3\xa9l\xc3\xa8ve', b'']
    presented = [b'v1.1800000100.' + b'0' * 64, b'a' * 64, b'A' * 64, b'v1.0.' + b'f' * 64, b'v1..',
                 b'at1.ws-1.svc.1800000100000.' + b'0' * 64, b'at1.ws-1.svc.x.y', b'v1.99999999999999999999.' + b'1' * 64]
    write('identity', [bytes([128]) + u + b'\n' + p for u in ids for p in presented][:MAX])

    # Config: the example configs, and the documents of the config tests.
    cfg = []
    for root, _, files in os.walk(os.path.join(REPO, 'examples')):
        for f in sorted(files):
            if f.endswith('.json') and 'node_modules' not in root:
                data = open(os.path.join(root, f), 'rb').read()
                if len(data) <= 4096:
                    cfg.append(data)
    for s in cpp_strings('tests/server/config_test.cpp'):
        if s.strip().startswith(b'{'):
            cfg.append(s)
    write('config', cfg)

    # Request heads: the framing cases of tests/server/request_head.test.mjs and ordinary requests.
    heads = [
        b'GET /v1/executions/abc/events?lastEventId=5\nHost: x\nLast-Event-ID: 9223372036854775807',
        b'GET /v1/executions/abc/events\nLast-Event-ID: 9223372036854775808',
        b'POST /v1/apps/welcome/executions?wait=true\nContent-Length: 17\nContent-Type: application/json',
        b'POST /healthz\nTransfer-Encoding: chunked',
        b'POST /healthz\nTransfer-Encoding: gzip',
        b'POST /healthz\nTransfer-Encoding: xchunked',
        b'POST /healthz\nTransfer-Encoding: identity',
        b'POST /healthz\nTransfer-Encoding: chunked, identity',
        b'POST /healthz\nTransfer-Encoding: gzip, chunked',
        b'POST /healthz\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked',
        b'POST /healthz\nTransfer-Encoding: gzip\nContent-Length: 5',
        b'POST /healthz\nContent-Length: 5, 5\nContent-Length: 05',
        b'POST /healthz\nContent-Length: 5\nContent-Length: 6',
        b'GET /v1/apps/a%20b/executions?x=a+b%26c&&flag&=v&%zz=%4\nX-Confab-Workspace: demo\nX-Confab-User: alice',
        b'GET /v1//x/\nLast-Event-ID: -1',
        b'GET *\nLast-Event-ID: 1e3',
    ]
    write('request_head', [bytes([v]) + h for h in heads for v in (0x00, 0x29, 0xa1)][:MAX])


if __name__ == '__main__':
    sys.exit(main())
