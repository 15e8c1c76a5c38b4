/**
 * A small parser of the Prometheus text exposition format (0.0.4), enough to
 * check wshub's /metrics exactly: `# HELP` / `# TYPE` lines, samples with
 * escaped label values, `NaN` / `+Inf`.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class Exposition {
  readonly samples: Sample[] = [];
  readonly types = new Map<string, string>();
  readonly help = new Map<string, string>();

  /** The value of the one sample of `name` whose labels include `labels`; throws if there are several, undefined if none. */
  get(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.find(name, labels);
    if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${found.length} samples`);
    return found[0]?.value;
  }

  find(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** Sum over every sample of `name` matching `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.find(name, labels).reduce((a, s) => a + s.value, 0);
  }
}

function parseValue(text: string): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`bad sample value "${text}"`);
  return n;
}

export function parseExposition(text: string): Exposition {
  const out = new Exposition();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)\s+(.*)$/.exec(line);
      if (m) (m[1] === 'TYPE' ? out.types : out.help).set(m[2]!, m[3]!);
      continue;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`line ${i + 1}: no metric name: ${line}`);
    const name = nameMatch[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ' || line[pos] === ',') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
        if (!key || line[pos + key[0].length] !== '=' || line[pos + key[0].length + 1] !== '"') throw new Error(`line ${i + 1}: bad label at ${pos}: ${line}`);
        pos += key[0].length + 2;
        let value = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) throw new Error(`line ${i + 1}: unterminated label value`);
          pos++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[pos++];
            value += e === 'n' ? '\n' : (e ?? '');
          } else value += c;
        }
        labels[key[0]] = value;
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    out.samples.push({ name, labels, value: parseValue(rest[0] ?? '') });
  }
  return out;
}

export async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}
