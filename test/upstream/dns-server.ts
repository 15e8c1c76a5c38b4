/**
 * A tiny real DNS server on loopback UDP, so name-resolution failures are
 * tested without any query leaving the machine: it answers every question
 * NXDOMAIN (`mode: 'nxdomain'`), or never answers (`mode: 'silent'`).
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { Resolver } from 'node:dns';
import type { LookupFunction } from 'node:net';

export interface TestDnsServer {
  port: number;
  queries: number;
  /** A `lookup` (dns.lookup shape) that asks only this server. */
  lookup: LookupFunction;
  close: () => Promise<void>;
}

export async function startDnsServer(mode: 'nxdomain' | 'silent'): Promise<TestDnsServer> {
  const socket: Socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const server: TestDnsServer = {
    port: socket.address().port,
    queries: 0,
    lookup: undefined as unknown as LookupFunction,
    close: () => new Promise<void>((resolve) => {
      resolver.cancel();
      socket.close(() => resolve());
    }),
  };
  socket.on('message', (query, peer) => {
    server.queries++;
    if (mode === 'silent' || query.length < 12) return;
    // Header: same id, QR=1, opcode and RD copied, RA=1, RCODE=3 (NXDOMAIN); echo the question only.
    let end = 12;
    while (end < query.length && query[end] !== 0) end += (query[end] ?? 0) + 1;
    end += 5;
    const reply = Buffer.from(query.subarray(0, Math.min(end, query.length)));
    reply[2] = 0x80 | ((query[2] ?? 0) & 0x79);
    reply[3] = 0x80 | 0x03;
    reply.writeUInt16BE(1, 4);
    reply.writeUInt32BE(0, 6);
    reply.writeUInt16BE(0, 10);
    socket.send(reply, peer.port, peer.address);
  });
  const resolver = new Resolver({ timeout: 10_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${server.port}`]);
  server.lookup = ((hostname: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string | Array<{ address: string; family: number }>, family?: number) => void) => {
    resolver.resolve4(hostname, (err, addresses) => {
      if (err) callback(err, '', 4);
      else callback(null, addresses.map((address) => ({ address, family: 4 })));
    });
  });
  return server;
}
