/**
 * zod, loaded through require().
 *
 * zod's ESM entry re-exports its ~250 locale modules, and Node's ESM loader
 * opens them all at once: a daemon started under `ulimit -n 64` died with
 * EMFILE before running a line. CommonJS loads one file at a time. Every
 * module of wshub takes `z` from here, so all schemas come from one zod.
 */
import { createRequire } from 'node:module';
import type { z as zod } from 'zod';

const requireCjs = createRequire(import.meta.url);

export const z: typeof zod = (requireCjs('zod') as { z: typeof zod }).z;

/* eslint-disable @typescript-eslint/no-namespace -- the types that go with the value above, under the same name */
export declare namespace z {
  type infer<T extends zod.ZodType> = zod.infer<T>;
  type output<T extends zod.ZodType> = zod.output<T>;
  type input<T extends zod.ZodType> = zod.input<T>;
  type ZodType = zod.ZodType;
  type ZodError = zod.ZodError;
}
