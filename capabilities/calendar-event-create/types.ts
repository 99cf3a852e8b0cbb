// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Create one event in a granted calendar on a CalDAV server, optionally inviting attendees from granted domains. Start and end are ISO 8601 date-times with an explicit offset; the event is stored in UTC as a new resource that can never overwrite another, and the provider's password is injected by the broker and never reaches the caller.
 */
export interface CalendarEventCreateInput {
  /**
   * The event's title (its SUMMARY): no control characters, line breaks or bidirectional overrides
   */
  title: string;
  /**
   * When it starts: an ISO 8601 date-time with seconds optional and an offset that must be given, Z or +HH:MM, +HHMM, +HH (2026-12-03T10:00:00+01:00, 2026-12-03T09:00Z)
   */
  start: string;
  /**
   * When it ends, spelled like start: after start, and at most 31 days after it
   */
  end: string;
  /**
   * An attendee's e-mail address (local-part@domain, no display name); its domain must be one the grant names with attendee-domain, and the grant's attendees max= bounds how many
   *
   * @maxItems 50
   */
  attendees?: string[];
  /**
   * Which granted calendar (a collection below the provider's calendar home) gets the event (default: the first one the grant names)
   */
  calendar?: string;
  /**
   * Which of the grant's providers (CalDAV servers) gets the event (default: the first one the grant names)
   */
  provider?: string;
}

export interface CalendarEventCreateResult {
  /**
   * The event's UID, also the name of its resource (UID.ics)
   */
  event_id: string;
  /**
   * The URL of the event's resource on the CalDAV server (CalDAV has no web page of an event; a GET with the provider's credential returns it)
   */
  html_link: string;
}
