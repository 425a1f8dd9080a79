declare module 'minihost:app/types@0.2.0' {
  /**
   * A user id scoped to one app: stable for (app, user), unlinkable across apps.
   */
  export type AppUserId = string;
  /**
   * Who and where an event happens.
   */
  export interface Context {
    /**
     * The app's id.
     */
    app: string,
    /**
     * The user who caused the event, as this app sees them.
     */
    user: AppUserId,
    /**
     * The conversation the event happened in.
     */
    conversation: string,
    /**
     * The user's locale, a BCP 47 tag such as `en` or `pt-BR`.
     */
    locale: string,
    /**
     * Whether the user is the app's own developer (for the app's administrative commands,
     * such as a shop's refunds).
     */
    developer: boolean,
  }
  /**
   * `/name args...` typed by a user.
   */
  export interface Command {
    /**
     * The command name without the slash, e.g. `echo`.
     */
    name: string,
    /**
     * Everything after the name, trimmed (may be empty).
     */
    args: string,
  }
  /**
   * A plain message in a conversation where the app is installed.
   */
  export interface Incoming {
    /**
     * The message id.
     */
    id: string,
    /**
     * Who wrote it.
     */
    sender: AppUserId,
    /**
     * Its text.
     */
    text: string,
  }
  /**
   * The value of one input block at the time a button was pressed.
   */
  export interface InputValue {
    /**
     * The input block's id.
     */
    id: string,
    /**
     * What the user typed.
     */
    value: string,
  }
  /**
   * A button press on a card this app sent.
   */
  export interface Action {
    /**
     * The message holding the card.
     */
    message: string,
    /**
     * The button's id.
     */
    id: string,
    /**
     * The button's value.
     */
    value: string,
    /**
     * The values of the card's input blocks.
     */
    inputs: Array<InputValue>,
  }
  /**
   * Where a payment the app requested stands.
   * # Variants
   * 
   * ## `"confirmed"`
   * 
   * The user confirmed and the funds moved.
   * ## `"declined"`
   * 
   * The user declined.
   * ## `"expired"`
   * 
   * Nobody answered before the request expired; nothing moved.
   * ## `"partially-refunded"`
   * 
   * Part of the payment went back to the user (see `refunded`).
   * ## `"refunded"`
   * 
   * All of the payment went back to the user.
   */
  export type PaymentStatus = 'confirmed' | 'declined' | 'expired' | 'partially-refunded' | 'refunded';
  /**
   * A change to a payment the app requested.
   */
  export interface PaymentUpdate {
    /**
     * The payment request id returned by `payments.request`.
     */
    request: string,
    /**
     * The new status.
     */
    status: PaymentStatus,
    /**
     * The amount asked for, in minor units.
     */
    amount: bigint,
    /**
     * Its ISO 4217 currency.
     */
    currency: string,
    /**
     * How much of it has gone back to the user so far, in minor units.
     */
    refunded: bigint,
  }
  /**
   * What happened.
   */
  export type Event = EventCommand | EventMessage | EventAction | EventOpened | EventPayment | EventTimer;
  /**
   * A `/command` for this app.
   */
  export interface EventCommand {
    tag: 'command',
    val: Command,
  }
  /**
   * A message in a conversation where the app is installed.
   */
  export interface EventMessage {
    tag: 'message',
    val: Incoming,
  }
  /**
   * A button press on one of the app's cards.
   */
  export interface EventAction {
    tag: 'action',
    val: Action,
  }
  /**
   * The user opened the app's panel.
   */
  export interface EventOpened {
    tag: 'opened',
  }
  /**
   * A payment the app requested changed status.
   */
  export interface EventPayment {
    tag: 'payment',
    val: PaymentUpdate,
  }
  /**
   * A timer the app set (`timers.set`) came due; the text is the timer's key. The context is
   * the conversation and user of the event that set it.
   */
  export interface EventTimer {
    tag: 'timer',
    val: string,
  }
  /**
   * A button on a card.
   */
  export interface Button {
    /**
     * Which button, as the app will see it in the `action` event.
     */
    id: string,
    /**
     * What the button says.
     */
    label: string,
    /**
     * An app-defined value sent back with the press.
     */
    value: string,
  }
  /**
   * A one-line text input whose value is sent with the next button press.
   */
  export interface Input {
    /**
     * Which input.
     */
    id: string,
    /**
     * Hint shown in the empty field.
     */
    placeholder: string,
  }
  /**
   * One block of a card.
   */
  export type Block = BlockText | BlockButton | BlockImage | BlockInput | BlockDivider;
  /**
   * A paragraph of text.
   */
  export interface BlockText {
    tag: 'text',
    val: string,
  }
  /**
   * A button.
   */
  export interface BlockButton {
    tag: 'button',
    val: Button,
  }
  /**
   * An image by URL (https or a data:image URL).
   */
  export interface BlockImage {
    tag: 'image',
    val: string,
  }
  /**
   * A text input.
   */
  export interface BlockInput {
    tag: 'input',
    val: Input,
  }
  /**
   * A horizontal rule.
   */
  export interface BlockDivider {
    tag: 'divider',
  }
  /**
   * A card: blocks top to bottom.
   */
  export interface Card {
    /**
     * Its blocks, in the order they are drawn, top to bottom.
     */
    blocks: Array<Block>,
  }
  /**
   * The content of a message.
   */
  export type Content = ContentText | ContentCard;
  /**
   * Plain text.
   */
  export interface ContentText {
    tag: 'text',
    val: string,
  }
  /**
   * A card of blocks.
   */
  export interface ContentCard {
    tag: 'card',
    val: Card,
  }
  /**
   * Why a capability call or a handler failed.
   */
  export type Error = ErrorPermissionDenied | ErrorQuotaExceeded | ErrorInvalid | ErrorUnavailable;
  /**
   * The user did not grant the scope named here (or revoked it).
   */
  export interface ErrorPermissionDenied {
    tag: 'permission-denied',
    val: string,
  }
  /**
   * A budget or quota is exhausted; try later.
   */
  export interface ErrorQuotaExceeded {
    tag: 'quota-exceeded',
  }
  /**
   * An argument was rejected; the text says which and why.
   */
  export interface ErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * The capability is not available on this host (or is down); the text says which.
   */
  export interface ErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
