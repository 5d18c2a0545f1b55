/**
 * The ip sessions' limits (provider/ipsession.ts), set in the environment of `pulumi`,
 * which the engine passes on to the provider process. Kept apart from the sessions so
 * that the SDK can check them before anything runs, without loading the sessions.
 */

/** The variables, each a positive whole number (milliseconds, or a count of sessions). */
export const LIMIT_VARIABLES = ["NSLAB_IP_MAX_SESSIONS", "NSLAB_IP_IDLE_MS", "NSLAB_IP_MAX_AGE_MS", "NSLAB_IP_TIMEOUT_MS", "NSLAB_SSH_CONNECT_TIMEOUT_S"] as const;

/** The value of a limit's text, or undefined when it is not a positive whole number. */
function parse(text: string): number | undefined {
  const trimmed = text.trim();
  return /^[1-9][0-9]*$/.test(trimmed) ? Number(trimmed) : undefined;
}

const refusal = (variable: string, text: string) => `${variable} must be a positive whole number (it is ${JSON.stringify(text)}); unset it for the default`;

/**
 * A limit of the sessions, from the environment, or its default. Anything but a positive
 * whole number is refused, naming the variable, rather than silently replaced.
 */
export function limit(variable: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[variable];
  if (text === undefined || text === "") return fallback;
  const value = parse(text);
  if (value === undefined) throw new Error(`${refusal(variable, text)}, ${fallback}`);
  return value;
}

/**
 * Throws, naming the variable, when one of {@link LIMIT_VARIABLES} is set to anything
 * but a positive whole number (as the provider process would at its first operation).
 */
export function checkLimits(env: NodeJS.ProcessEnv = process.env): void {
  for (const variable of LIMIT_VARIABLES) {
    const text = env[variable];
    if (text !== undefined && text !== "" && parse(text) === undefined) throw new Error(refusal(variable, text));
  }
}
