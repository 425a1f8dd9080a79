/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/storage@0.2.0' {
  /**
   * The value under `key`, if any.
   */
  export function get(bucket: Bucket, key: string): Uint8Array | undefined;
  /**
   * Stores `value` under `key`.
   */
  export function set(bucket: Bucket, key: string, value: Uint8Array): void;
  /**
   * Removes `key`; returns whether it existed.
   */
  export { _delete as delete };
  function _delete(bucket: Bucket, key: string): boolean;
  /**
   * The keys starting with `prefix`, sorted.
   */
  export function keys(bucket: Bucket, prefix: string): Array<string>;
  /**
   * Stores `value` under `key` only if the key now holds `expected` (`none`: the key is
   * absent); returns whether it did. Concurrent events of one app read, change and
   * `compare-and-set` in a loop, so that none overwrites another's change.
   */
  export function compareAndSet(bucket: Bucket, key: string, expected: Uint8Array | undefined, value: Uint8Array): boolean;
  export type Error = import('minihost:app/types@0.2.0').Error;
  /**
   * Which half of the app's storage a key lives in.
   * # Variants
   * 
   * ## `"shared"`
   * 
   * Shared by every user of the app.
   * ## `"user"`
   * 
   * Private to the invoking user.
   */
  export type Bucket = 'shared' | 'user';
}
