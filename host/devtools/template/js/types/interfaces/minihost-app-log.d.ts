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
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
