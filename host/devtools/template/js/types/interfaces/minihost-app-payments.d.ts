/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/payments@0.2.0' {
  /**
   * Asks the invoking user to confirm a payment; returns the request id. Funds move only
   * after the user confirms, and the app then receives a `payment` event.
   */
  export function request(order: Order): string;
  /**
   * Gives `amount` minor units of the paid request `request` (one of this app's) back to the
   * user who paid it, from the app's merchant account; returns the refund id. Never more than
   * what was paid and not yet refunded (`invalid` otherwise). The same key with the same
   * arguments is the same refund; with others, `invalid`. Scope `payments.request`.
   */
  export function refund(request: string, amount: bigint, idempotencyKey: string): string;
  /**
   * Pays the invoking user from the app's merchant account (never below zero: `invalid` when
   * it holds less); returns the payout id. Only the user whose event this is can be paid.
   * The same key with the same arguments is the same payout. Scope `payments.payout`.
   */
  export function payUser(payout: Payout): string;
  export type Error = import('minihost:app/types@0.2.0').Error;
  /**
   * What the app asks the user to pay for.
   */
  export interface Order {
    /**
     * The amount in minor units (cents).
     */
    amount: bigint,
    /**
     * An ISO 4217 code such as `EUR`.
     */
    currency: string,
    /**
     * What it is for, shown to the user.
     */
    description: string,
    /**
     * The app's key for this order: requesting twice with the same key is one request.
     */
    idempotencyKey: string,
  }
  /**
   * Money the app pays the invoking user from its merchant account.
   */
  export interface Payout {
    /**
     * The amount in minor units.
     */
    amount: bigint,
    /**
     * An ISO 4217 code such as `EUR`.
     */
    currency: string,
    /**
     * What it is for, shown on the user's statement.
     */
    description: string,
    /**
     * The app's key for this payout: paying out twice with the same key is one payout.
     */
    idempotencyKey: string,
  }
}
