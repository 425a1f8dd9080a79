/// <reference path="./interfaces/minihost-app-auth.d.ts" />
/// <reference path="./interfaces/minihost-app-log.d.ts" />
/// <reference path="./interfaces/minihost-app-messaging.d.ts" />
/// <reference path="./interfaces/minihost-app-payments.d.ts" />
/// <reference path="./interfaces/minihost-app-profile.d.ts" />
/// <reference path="./interfaces/minihost-app-storage.d.ts" />
/// <reference path="./interfaces/minihost-app-timers.d.ts" />
/// <reference path="./interfaces/minihost-app-types.d.ts" />
declare module 'minihost:app/miniapp@0.2.0' {
  export type Context = import('minihost:app/types@0.2.0').Context;
  export type Event = import('minihost:app/types@0.2.0').Event;
  export type Content = import('minihost:app/types@0.2.0').Content;
  export type Error = import('minihost:app/types@0.2.0').Error;
  export type * as MinihostAppAuth020 from 'minihost:app/auth@0.2.0'; // import minihost:app/auth@0.2.0
  export type * as MinihostAppLog020 from 'minihost:app/log@0.2.0'; // import minihost:app/log@0.2.0
  export type * as MinihostAppMessaging020 from 'minihost:app/messaging@0.2.0'; // import minihost:app/messaging@0.2.0
  export type * as MinihostAppPayments020 from 'minihost:app/payments@0.2.0'; // import minihost:app/payments@0.2.0
  export type * as MinihostAppProfile020 from 'minihost:app/profile@0.2.0'; // import minihost:app/profile@0.2.0
  export type * as MinihostAppStorage020 from 'minihost:app/storage@0.2.0'; // import minihost:app/storage@0.2.0
  export type * as MinihostAppTimers020 from 'minihost:app/timers@0.2.0'; // import minihost:app/timers@0.2.0
  export type * as MinihostAppTypes020 from 'minihost:app/types@0.2.0'; // import minihost:app/types@0.2.0
  /**
  * Handles one event. `ok(some(content))` replies in the event's conversation; `ok(none)`
  * stays silent; `err` is reported to the developer and shown to the user as a failure.
  */
  export function handle(ctx: Context, event: Event): Content | undefined;
}
