/// <reference path="./minihost-app-types.d.ts" />
declare module 'minihost:app/profile@0.2.0' {
  /**
   * The profile of the invoking user, or of a conversation member who granted it too.
   */
  export function get(user: AppUserId): Profile;
  export type AppUserId = import('minihost:app/types@0.2.0').AppUserId;
  export type Error = import('minihost:app/types@0.2.0').Error;
  /**
   * What the app may know about a user.
   */
  export interface Profile {
    /**
     * The user, as this app sees them.
     */
    user: AppUserId,
    /**
     * The name the user shows.
     */
    displayName: string,
    /**
     * An avatar URL, if the user has one.
     */
    avatar?: string,
    /**
     * The user's locale.
     */
    locale: string,
  }
}
