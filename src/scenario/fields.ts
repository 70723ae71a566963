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

/** The building blocks of the scenario schema's fields. */
export const int = (min: number, max: number) => z.number().int().min(min).max(max);
export const ns = int(0, 1e12);
/** A section may be left out: it then takes every default. */
export const section = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict().prefault({} as never);
/** A run of pages; titled so listings show it as one value, not two fields. */
export const range = z.object({ start: int(0, 2 ** 31 - 1), count: int(1, 2 ** 31 - 1) }).strict().meta({ title: 'range' });
