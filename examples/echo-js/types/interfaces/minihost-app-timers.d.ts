/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/timers@0.2.0' {
  /**
   * Delivers a `timer(key)` event `after-seconds` from now (1 second to 7 days). Setting a key
   * that is already pending in this conversation moves it. An app has at most 1,000 pending
   * timers (`quota-exceeded` beyond). Timers fire at least once: a node that stops while
   * running one leaves it to another node, so handle `timer` idempotently.
   */
  export function set(key: string, afterSeconds: number): void;
  /**
   * Cancels the pending timer `key` of this conversation; returns whether there was one.
   */
  export function cancel(key: string): boolean;
  export type Error = import('minihost:app/types@0.2.0').Error;
}
