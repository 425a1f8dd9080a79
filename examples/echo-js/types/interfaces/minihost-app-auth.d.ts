/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/auth@0.2.0' {
  /**
   * A one-time code for the invoking user, valid five minutes, which the app's backend
   * exchanges (with its secret and the PKCE verifier) for an access token scoped to the user's
   * grant. `code-challenge` is the backend's PKCE S256 challenge (RFC 7636): the backend keeps
   * the verifier, so a code that leaks through the app is useless without it.
   */
  export function loginCode(codeChallenge: string): string;
  export type Error = import('minihost:app/types@0.2.0').Error;
}
