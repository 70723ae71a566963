/**
 * Imports an ES-module-only package (vega, vega-lite: top-level await, so no require()). The
 * CLI bundle, a vm.Script that cannot import(), replaces this module with the loader's import.
 */
export const importExternal = (specifier: string): Promise<unknown> => import(specifier);
