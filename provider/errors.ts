/**
 * One error type for everything nslab reports, with a kind that says what went wrong
 * and therefore what the user (or a retry loop) can do about it.
 */
export type ErrorKind =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "Permission"
  | "Verification"
  | "Unsupported"
  | "CommandFailed";

export class NslabError extends Error {
  override readonly name = "NslabError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: {
      command?: string;
      stderr?: string;
      exitCode?: number;
      /** The command's end was not seen (a timeout, a lost connection): it may have run, or may still. */
      mayHaveRun?: boolean;
    } = {},
  ) {
    super(message);
    // Pulumi's dynamic provider prints a failed check's, diff's, read's or delete's error
    // as `${e}: ${e.stack}` before it returns it to the engine: nslab's frames (80 lines
    // over SSH) said nothing to the user. The message is the error (it names the object,
    // the command and the fix): the stack is its first line alone, as Node.js prints it
    // (read when asked: a message added to later shows whole), unless
    // NSLAB_FULL_STACK_TRACES=1, or the error is a bug of nslab's, whose frames say where.
    if (process.env.NSLAB_FULL_STACK_TRACES !== "1" && !message.includes("nslab bug")) {
      Object.defineProperty(this, "stack", {
        get: () => `NslabError: ${this.message}`,
        // Set by someone else (a library chaining causes): kept as given.
        set: (value: unknown) => Object.defineProperty(this, "stack", { value, writable: true, configurable: true }),
        configurable: true,
      });
    }
  }
}

/** True when the failed command may have run all the same (its end was not seen). */
export function mayHaveRun(err: unknown): boolean {
  return err instanceof NslabError && err.details.mayHaveRun === true;
}

/** True when `err` is an NslabError of the given kind. */
export function isKind(err: unknown, kind: ErrorKind): err is NslabError {
  return err instanceof NslabError && err.kind === kind;
}

const PERMISSION = /Operation not permitted|Permission denied|EPERM|EACCES/i;
const NOT_FOUND =
  /Cannot find device|does not exist|No such device|No such file or directory|No such process|Cannot open network namespace|not found|ENOENT|No such (?:rule|table|chain)/i;
const EXISTS = /File exists|already exists|EEXIST|Device or resource busy/i;
const UNSUPPORTED = /Operation not supported|not supported|EOPNOTSUPP|Unknown device type/i;
/**
 * nsenter (and the shell of an ip session) could not start the tool: it is not
 * installed. Checked before NOT_FOUND, whose "No such file or directory" it contains,
 * so that a missing `nft` never reads as "rule gone".
 */
const MISSING_TOOL = /(?:nsenter: failed to execute|nsenter: cannot execute|exec:?) ([^\s:]+): (?:No such file or directory|not found)/;

/**
 * Builds the error for a failed command from its stderr and exit code: the one place
 * where kernel messages are mapped to kinds. `subject` names the object ("veth
 * \"veth-ns1\" in namespace \"ns1\"") so that the message says what failed.
 */
export function commandError(subject: string, command: string, stderr: string, exitCode: number): NslabError {
  const detail = stderr.trim().split("\n").filter(Boolean).slice(-3).join("; ") || `exit code ${exitCode}`;
  const details = { command, stderr, exitCode };
  const missing = MISSING_TOOL.exec(stderr);
  if (missing || exitCode === 127) {
    const tool = missing?.[1] ?? command.split(" ")[0];
    return new NslabError("CommandFailed", `${subject}: ${tool} is not installed (not found in PATH; run scripts/setup or install it). Command: ${command}`, details);
  }
  if (PERMISSION.test(stderr)) {
    return new NslabError(
      "Permission",
      `${subject}: permission denied (${detail}). nslab needs CAP_NET_ADMIN, and CAP_SYS_ADMIN to create, enter or delete namespaces: run as root or grant both capabilities.`,
      details,
    );
  }
  if (EXISTS.test(stderr)) {
    return new NslabError(
      "AlreadyExists",
      `${subject} already exists (${detail}). Remove it, choose another name, or set adopt: true to take it over.`,
      details,
    );
  }
  if (UNSUPPORTED.test(stderr)) {
    return new NslabError("Unsupported", `${subject}: this kernel does not support the operation (${detail}). Command: ${command}`, details);
  }
  if (NOT_FOUND.test(stderr)) {
    return new NslabError("NotFound", `${subject}: not found (${detail}). Command: ${command}`, details);
  }
  return new NslabError("CommandFailed", `${subject}: command failed: ${command}: ${detail}`, details);
}
