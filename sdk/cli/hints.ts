/**
 * What nslab's command-line tools add to an error of the `pulumi` CLI they ran, when they
 * know its cause and the fix.
 */

/**
 * "failed to load checkpoint: EOF" from a file backend: a `pulumi` killed while it saved
 * the state (kill -9, a crash) can leave the state file's metadata sidecar
 * (`STACK.json.attrs`, written by the backend's storage library beside each file, not at
 * once) empty, and every later command then fails reading it. Removing the empty sidecar
 * is safe: it holds only metadata (a content type, a checksum), and the next save writes
 * it again. Reproduced by truncating one: the error, and the fix.
 */
export function pulumiErrorHint(text: string): string {
  if (/failed to load checkpoint: (?:unexpected )?EOF/.test(text)) {
    return (
      "nslab: a pulumi killed while it saved the state can leave the state's metadata file (STACK.json.attrs, file backend) empty, which every command then fails to read. " +
      "Remove the empty one and run the command again: find BACKEND_DIR/.pulumi/stacks -name '*.attrs' -size 0 -delete (BACKEND_DIR: the folder of your file:// backend URL). " +
      "A backend URL ending in ?metadata=skip writes no such files (README, \"Recovering from a crash\").\n"
    );
  }
  return "";
}

/**
 * The engine's error diagnostics to print, each once, leaving out those the CLI already
 * printed (a failure of several resources gave the same lines several times).
 */
export function unprintedErrors(printed: string, messages: string[]): string[] {
  const out: string[] = [];
  for (const message of messages) {
    const text = message.trim();
    if (text && !out.includes(text) && !printed.includes(text)) out.push(text);
  }
  return out;
}

/** What `tool` says when running the pulumi CLI failed before it ran (`spawn`'s error); its caller prefixes the tool's name. */
export function pulumiSpawnError(tool: string, err: NodeJS.ErrnoException): string {
  if (err.code === "ENOENT") return `the pulumi CLI is not on PATH (${tool} runs it): put its folder on PATH, e.g. PATH=$HOME/.pulumi/bin:$PATH`;
  return `could not run pulumi: ${err.message}`;
}

/**
 * Whether an engine diagnostic says why a command failed: an error, or text the program
 * or its language host wrote to stderr (severity "info#err": "We failed to locate the
 * entry point for your program" comes only that way, so a failed preview said nothing).
 */
export const explainsFailure = (severity: string | undefined) => severity === "error" || severity === "info#err";
