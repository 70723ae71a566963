import { z } from 'zod';

/** The building blocks of the scenario schema's fields. */
export const int = (min: number, max: number) => z.number().int().min(min).max(max);
export const ns = int(0, 1e12);
/** A section may be left out: it then takes every default. */
export const section = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict().prefault({} as never);
/** A run of pages. */
export const range = z.object({ start: int(0, 2 ** 31 - 1), count: int(1, 2 ** 31 - 1) }).strict();
