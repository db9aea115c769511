/**
 * A text from a provider (an error, a description, a title) cut to `max` characters with an
 * ellipsis, so an answer can never fill what it is shown or stored in.
 */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
