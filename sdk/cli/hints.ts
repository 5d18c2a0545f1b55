/**
 * What nslab's command-line tools add to an error of the `pulumi` CLI they ran, when they
 * know its cause and the fix.
 */
import * as path from "node:path";
import { backendUrl, processSources } from "../identity";

/**
 * "failed to load checkpoint: EOF" from a file backend: a `pulumi` killed while it saved
 * the state (kill -9, a crash) can leave the state file's metadata sidecar
 * (`STACK.json.attrs`, written by the backend's storage library beside each file, not at
 * once) empty, and every later command then fails reading it. Removing the empty sidecar
 * is safe: it holds only metadata (a content type, a checksum), and the next save writes
 * it again. Reproduced by truncating one: the error, and the fix.
 */
export function pulumiErrorHint(text: string, projectDir?: string): string {
  if (/failed to load checkpoint: (?:unexpected )?EOF/.test(text)) {
    const dir = projectDir === undefined ? undefined : fileBackendDir(projectDir);
    return (
      "nslab: a pulumi killed while it saved the state can leave the state's metadata file (STACK.json.attrs, file backend) empty, which every command then fails to read. " +
      `Remove the empty one and run the command again: find ${dir ? shellWord(dir) : "BACKEND_DIR"}/.pulumi/stacks -name '*.attrs' -size 0 -delete${dir ? "" : " (BACKEND_DIR: the folder of your file:// backend URL)"}. ` +
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

/**
 * The folder of the file backend the pulumi CLI uses for the project in `projectDir` (or
 * a folder below it: the CLI looks upward for Pulumi.yaml), as it chooses it; undefined
 * for another backend, or when no project is found and no PULUMI_BACKEND_URL set.
 */
export function fileBackendDir(projectDir: string): string | undefined {
  const sources = processSources();
  let project: string | undefined;
  for (let dir = path.resolve(projectDir); ; dir = path.dirname(dir)) {
    if (["Pulumi.yaml", "Pulumi.yml"].some((f) => sources.readFile(path.join(dir, f)) !== undefined)) {
      project = dir;
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  if (project === undefined && !sources.env.PULUMI_BACKEND_URL?.trim()) return undefined;
  const url = backendUrl({ ...sources, cwd: project ?? path.resolve(projectDir) });
  const m = url === undefined ? null : /^file:\/\/([^?]*)/.exec(url);
  return m ? m[1] : undefined;
}

/** The project folder a pulumi command line names (--cwd DIR, -C DIR, --cwd=DIR), else this one. */
export function projectDirOf(args: string[]): string {
  for (const [n, a] of args.entries()) {
    if ((a === "--cwd" || a === "-C") && args[n + 1] !== undefined) return args[n + 1];
    if (a.startsWith("--cwd=")) return a.slice("--cwd=".length);
  }
  return process.cwd();
}

/** `text` as one shell word: as is when plain, else in single quotes. */
const shellWord = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);
