declare module 'minihost:app/log@0.2.0' {
  /**
   * Appends a line to the invocation log (bounded in count and size; extra lines are dropped).
   */
  export function write(level: Level, message: string): void;
  /**
   * How important a line is.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * Step-by-step detail.
   * ## `"debug"`
   * 
   * Detail for debugging.
   * ## `"info"`
   * 
   * What the app did.
   * ## `"warn"`
   * 
   * Something unexpected the app got past.
   * ## `"error"`
   * 
   * Something that failed.
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
