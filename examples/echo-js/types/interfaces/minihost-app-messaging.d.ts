/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/messaging@0.2.0' {
  /**
   * Sends `content` as the app to `conversation`; returns the new message id.
   */
  export function send(conversation: string, content: Content): string;
  /**
   * Replaces the content of a message this app sent earlier (e.g. a live tally card).
   */
  export function update(message: string, content: Content): void;
  /**
   * How many more messages the app may send to `conversation` right now.
   */
  export function budget(conversation: string): number;
  export type Content = import('minihost:app/types@0.2.0').Content;
  export type Error = import('minihost:app/types@0.2.0').Error;
}
