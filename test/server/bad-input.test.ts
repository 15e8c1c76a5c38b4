/**
 * Bad input over raw sockets: every case gets its exact answer (HTTP status
 * or close code) and is counted under its code, and a healthy session on the
 * same server keeps exchanging messages throughout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { HardenedServer } from '../../src/server/server.js';
import {
  Chatter, HealthyPeer, closeCodeFor, delta, frame, httpStatus, rawConnect, rawRequest, readAll, startEchoServer, tcpPort, tcpUrl,
  upgradeRequest, waitFor, withTimeout,
} from './helpers.js';

const MAX_PAYLOAD = 1024;
const HANDSHAKE_TIMEOUT_MS = 500;

describe('bad input', () => {
  let server: HardenedServer;
  let port: number;
  let healthy: HealthyPeer;
  let chatter: Chatter;

  before(async () => {
    server = await startEchoServer({ tcp: { port: 0 }, maxPayload: MAX_PAYLOAD, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, pingIntervalMs: 0, idleTimeoutMs: 0 });
    port = tcpPort(server);
    healthy = await HealthyPeer.open(tcpUrl(server));
    await healthy.check();
    chatter = await Chatter.start(tcpUrl(server));
  });

  after(async () => {
    await chatter.stop();
    healthy.close();
    server.destroy();
  });

  /** Run `fn`, then check the healthy session and that `code` was counted exactly `count` times under `kind`. */
  async function expectCounted(kind: 'rejected' | 'errors', code: string, fn: () => Promise<void>, count = 1): Promise<void> {
    const before = server.stats()[kind];
    await fn();
    await waitFor(() => delta(before, server.stats()[kind], code) >= count, 3000, `${code} counted`);
    assert.equal(delta(before, server.stats()[kind], code), count, `${kind}.${code}`);
    await healthy.check();
  }

  test('malformed HTTP is answered 400 and counted ERR_HANDSHAKE_INVALID', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      const answer = await rawRequest(port, 'GARBAGE \x01\x02 nonsense\r\n\r\n');
      assert.equal(httpStatus(answer), 400);
    });
  });

  test('a missing Sec-WebSocket-Key is answered 400', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      assert.equal(httpStatus(await rawRequest(port, upgradeRequest({ 'Sec-WebSocket-Key': undefined }))), 400);
    });
  });

  test('an invalid Sec-WebSocket-Key is answered 400', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      assert.equal(httpStatus(await rawRequest(port, upgradeRequest({ 'Sec-WebSocket-Key': 'not-base64-16-bytes' }))), 400);
    });
  });

  test('a wrong Sec-WebSocket-Version is answered 426 naming version 13', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      const answer = (await rawRequest(port, upgradeRequest({ 'Sec-WebSocket-Version': '12' }))).toString('latin1');
      assert.equal(httpStatus(Buffer.from(answer, 'latin1')), 426);
      assert.match(answer, /\r\nSec-WebSocket-Version: 13\r\n/i);
    });
  });

  test('an HTTP/1.0 upgrade request is answered 400 ERR_HANDSHAKE_INVALID, not 101 (RFC 6455 4.1 needs HTTP/1.1)', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      const answer = (await rawRequest(port, upgradeRequest().replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n'))).toString('latin1');
      assert.equal(httpStatus(Buffer.from(answer, 'latin1')), 400);
      assert.match(answer, /\r\nX-Wshub-Error: ERR_HANDSHAKE_INVALID\r\n/i);
      assert.match(answer, /needs HTTP\/1\.1 or later, got HTTP\/1\.0/);
    });
  });

  test('a plain HTTP request without Upgrade is answered 426', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      assert.equal(httpStatus(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 426);
    });
  });

  test('an oversized request head is answered 431', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      assert.equal(httpStatus(await rawRequest(port, upgradeRequest({ 'X-Filler': 'a'.repeat(20_000) }))), 431);
    });
  });

  test('an unparsable request target is answered 400', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_INVALID', async () => {
      assert.equal(httpStatus(await rawRequest(port, upgradeRequest({}, '//[::1'))), 400);
    });
  });

  test('an unmasked client frame closes the session with 1002', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x1, payload: Buffer.from('hi'), mask: false })), 1002);
    });
  });

  test('a reserved opcode closes the session with 1002', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x3, payload: Buffer.from('x') })), 1002);
    });
  });

  test('RSV bits without a negotiated extension close the session with 1002', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x1, rsv: 4, payload: Buffer.from('x') })), 1002);
    });
  });

  test('invalid UTF-8 in a text message closes the session with 1007', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x1, payload: Buffer.from([0xc3, 0x28, 0xff]) })), 1007);
    });
  });

  test('an invalid close code closes the session with 1002', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(1005); // reserved: must never be sent on the wire
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x8, payload })), 1002);
    });
  });

  test('an oversized frame closes the session with 1009', async () => {
    await expectCounted('errors', 'ERR_PAYLOAD_TOO_LARGE', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x2, payload: Buffer.alloc(MAX_PAYLOAD + 1) })), 1009);
    });
  });

  test('an oversized fragmented message closes the session with 1009', async () => {
    await expectCounted('errors', 'ERR_PAYLOAD_TOO_LARGE', async () => {
      const part = Buffer.alloc(MAX_PAYLOAD / 2);
      const frames = [
        frame({ opcode: 0x2, fin: false, payload: part }),
        frame({ opcode: 0x0, fin: false, payload: part }),
        frame({ opcode: 0x0, fin: true, payload: part }),
      ];
      assert.equal(await closeCodeFor(port, frames), 1009);
    });
  });

  test('a control frame over 125 bytes closes the session with 1002', async () => {
    await expectCounted('errors', 'ERR_PROTOCOL', async () => {
      assert.equal(await closeCodeFor(port, frame({ opcode: 0x9, payload: Buffer.alloc(126) })), 1002);
    });
  });

  test('half a handshake then a stall is destroyed after handshakeTimeoutMs, unanswered', async () => {
    await expectCounted('rejected', 'ERR_HANDSHAKE_TIMEOUT', async () => {
      const socket = await rawConnect(port);
      const all = readAll(socket, HANDSHAKE_TIMEOUT_MS + 3000);
      const half = upgradeRequest();
      socket.write(half.slice(0, half.length / 2));
      const started = Date.now();
      const answer = await all;
      assert.equal(answer.length, 0, 'no bytes for a slowloris peer');
      assert.ok(Date.now() - started >= HANDSHAKE_TIMEOUT_MS - 50, 'not before the timeout');
    });
  });

  test('a peer that hangs up halfway through its request is counted ERR_PEER_GONE, unanswered', async () => {
    await expectCounted('errors', 'ERR_PEER_GONE', async () => {
      const socket = await rawConnect(port);
      const all = readAll(socket);
      socket.end('GET / HTTP/1.1\r\nHost: x\r\nUpgr');
      assert.equal((await all).length, 0);
    });
  });

  test('a client that resets right after connect costs only its own socket', async () => {
    const RESETS = 20;
    await expectCounted('errors', 'ERR_PEER_GONE', async () => {
      for (let i = 0; i < RESETS; i++) {
        const socket = await rawConnect(port);
        // Give the server a moment to accept, so the reset hits an accepted socket.
        await new Promise((r) => setTimeout(r, 5));
        socket.resetAndDestroy();
      }
    }, RESETS);
    await waitFor(() => server.stats().handshaking === 0, 3000, 'handshaking back to 0');
  });

  test('1,000 connections opened and abandoned: the server still serves and handshaking returns to 0', async () => {
    const TOTAL = 1000;
    const BATCH = 50;
    const acceptedBefore = server.stats().accepted;
    await withTimeout((async () => {
      for (let done = 0; done < TOTAL; done += BATCH) {
        await Promise.all(Array.from({ length: BATCH }, () => new Promise<void>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          socket.on('error', () => resolve());
          socket.once('connect', () => {
            // Half of them leave a partial request behind, half nothing at all.
            if (done % 100 === 0) socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
            socket.destroy();
            resolve();
          });
        })));
      }
    })(), 30_000, '1,000 abandoned connections');
    await waitFor(() => server.stats().handshaking === 0, 5000, 'handshaking back to 0');
    assert.equal(server.stats().accepted, acceptedBefore, 'no session came of it');
    assert.equal(server.stats().open, 2, 'only the healthy and the chatter sessions are open');
    await healthy.check();
  });

  test('a second healthy session talked the whole time: every message echoed, in order', async () => {
    const { sent, received, outOfOrder, open } = await chatter.stop();
    assert.equal(open, true, 'the chatter session was never closed');
    assert.ok(sent > 10, `the chatter ran (${sent} messages)`);
    assert.equal(received, sent);
    assert.equal(outOfOrder, 0);
  });
});
