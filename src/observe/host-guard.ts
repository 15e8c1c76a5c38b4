/**
 * DNS-rebinding defence for the HTTP side: accept only the `Host` names this
 * listener answers to.
 *
 * A web page at `http://evil.example:7071/` can rebind `evil.example` to
 * 127.0.0.1 and then read the hub's /status from the user's browser as
 * same-origin — but every such request says `Host: evil.example:7071`. So:
 *
 * - the bound address itself (`127.0.0.1`, `[::1]`, `192.0.2.7`) is accepted;
 * - on a loopback address, so is `localhost`;
 * - on a wildcard address (`0.0.0.0`, `::`), any IP literal (a page cannot
 *   serve itself from an IP it does not own, so IP literals cannot be
 *   rebound) and `localhost`;
 * - plus the names configured (`httpAllowedHosts`), e.g. the name a reverse
 *   proxy or a load balancer uses.
 *
 * Everything else — other names, a missing Host — is refused. The port in
 * `Host` is not compared (a proxy may rewrite it; it protects nothing).
 */
import { isIP } from 'node:net';

export class HostGuard {
  readonly #names = new Set<string>();
  #anyIp = false;

  constructor(allowed: readonly string[] = []) {
    for (const name of allowed) {
      const host = hostnameOf(name) ?? hostnameOf(`${name}:0`);
      if (host !== undefined) this.#names.add(host);
    }
  }

  /** Learn the address the listener is bound to. */
  bound(address: string): void {
    if (address === '0.0.0.0' || address === '::') {
      this.#anyIp = true;
      this.#names.add('localhost');
      return;
    }
    this.#names.add(isIP(address) === 6 ? `[${address.toLowerCase()}]` : address.toLowerCase());
    if (isLoopback(address)) this.#names.add('localhost');
  }

  /** Undefined when `header` names this listener; else why it is refused. */
  check(header: string | undefined): string | undefined {
    if (header === undefined || header === '') return 'a Host header is required';
    const host = hostnameOf(header);
    if (host === undefined) return 'the Host header is malformed';
    if (this.#names.has(host)) return undefined;
    if (this.#anyIp && isIP(host.replace(/^\[|\]$/g, '')) !== 0) return undefined;
    return `this hub does not answer to Host "${header.slice(0, 100)}"; add the name to httpAllowedHosts to allow it`;
  }
}

/** The host part of a Host header, as a browser would have normalized it (lower case, IPv6 in brackets); undefined when malformed. */
function hostnameOf(header: string): string | undefined {
  if (/[\s/?#@\\]/.test(header)) return undefined;
  try {
    const url = new URL(`http://${header}`);
    return url.hostname === '' ? undefined : url.hostname;
  } catch {
    return undefined;
  }
}

function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === '::1' || a.startsWith('127.') || a === '::ffff:127.0.0.1';
}
