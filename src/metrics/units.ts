/** QEMU's kbytes: bytes >> 10, as a division because byte counters pass 2^32. */
export const toKbytes = (bytes: number) => Math.floor(bytes / 1024);
export const kb = (bytes: number) => `${toKbytes(bytes)} kbytes`;
export const ms = (v: number) => `${Math.round(v)} ms`;
/** Nanoseconds as milliseconds to the µs, as every time in a run report is given. */
export const nsToMs = (ns: number) => Math.round(ns / 1000) / 1000;
