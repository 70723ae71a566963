import { z } from 'zod';

/**
 * What `postcopy-emu fields`, the JSON Schema and docs/model.md say about a field, attached to
 * it with `.meta()` so a default and its source sit side by side and cannot drift apart.
 * `when` names the sibling setting the field applies to (`policy: bubbling`).
 */
export interface FieldDoc {
  unit?: string;
  source: string;
  when?: string;
}

declare module 'zod' {
  interface GlobalMeta extends Partial<FieldDoc> {}
}

/** Source of a field without a default: the scenario must give it. */
export const REQUIRED = 'required: no default';

/**
 * The building blocks of the scenario schema's fields; the range comes first, so 1e308 is told
 * the field's own bound. The checks go in with one `check()`: a clone of the schema per
 * `.min()`/`.max()`/`.int()` made building the schema at every start ~3× slower for these.
 */
export const int = (min: number, max: number) => z.number().check(z.gte(min), z.lte(max), z.int());
/** A page or host-page size: 2^k bytes, as every MMU and the page-granular transfer require. */
export const pageBytes = int(512, 2 ** 30).refine((v) => (v & (v - 1)) === 0, 'must be a power of two (a page is 2^k bytes), e.g. 4096');
/**
 * Lists of ranges and faults: large enough for any real layout, small enough that validation and
 * the per-range setup stay instant (a 1 M-entry list took 98 s and an out-of-memory abort).
 */
export const MAX_LIST = 65_536;
export const list = <T extends z.ZodType>(item: T) => z.array(item).max(MAX_LIST, `at most ${MAX_LIST} entries (merge adjacent ranges)`);
export const ns = int(0, 1e12);
/** A section may be left out: it then takes every default. */
export const section = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict().prefault({} as never);
/** A run of pages; titled so listings show it as one value, not two fields. */
export const range = z.object({ start: int(0, 2 ** 31 - 1), count: int(1, 2 ** 31 - 1) }).strict().meta({ title: 'range' });
