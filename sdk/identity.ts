/**
 * What identifies a stack in nslab's ownership marks.
 *
 * Every kernel object nslab makes carries a mark derived from its resource's owner
 * string, `PROJECT/STACK@BACKEND/KIND/NAME`. BACKEND is 8 hex digits of a hash of the
 * state backend's URL (as the Pulumi CLI chooses it) and the organization, so two
 * stacks with the same project and stack name on two backends (two file backends, a
 * file backend and the Pulumi Cloud, two organizations) make different marks: neither
 * takes over, refreshes or deletes the other's objects, and a create that meets the
 * other's object says whose it is instead of taking it.
 *
 * The backend URL is found the way the CLI finds it: `PULUMI_BACKEND_URL`, else the
 * project's `backend.url` in Pulumi.yaml, else the URL of the current login
 * (`$PULUMI_HOME/credentials.json`, default `~/.pulumi`). A `file://` URL is made
 * absolute against the program's folder, `~` against the home folder. When none is
 * found, the owner is `PROJECT/STACK/KIND/NAME` (nslab's marks before stack
 * identities), and stacks of one name on several backends share marks.
 *
 * A resource keeps the owner it was made with for as long as it exists (see the
 * provider's check), so objects made by an nslab before this change keep their marks.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Where {@link backendUrl} looks; the real process by default, fixed values in tests. */
export interface BackendSources {
  env: NodeJS.ProcessEnv;
  /** The program's folder (Pulumi runs programs in their project folder). */
  cwd: string;
  home: string;
  readFile(file: string): string | undefined;
}

const readIfThere = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** The sources of the running process. */
export function processSources(): BackendSources {
  return { env: process.env, cwd: process.cwd(), home: os.homedir(), readFile: readIfThere };
}

/**
 * The project's `backend: { url: X }` in Pulumi.yaml (or Pulumi.yml) text; undefined
 * when there is none. Only this one key is read, so a line-based reading is enough:
 * `backend:` at the start of a line, then an indented `url:` before the next top-level key.
 */
export function projectBackendUrl(yaml: string): string | undefined {
  const lines = yaml.split(/\r?\n/);
  // Flow style on one line: backend: { url: X }
  const flow = lines.map((l) => /^backend:\s*\{(.*)\}\s*(#.*)?$/.exec(l)).find(Boolean);
  if (flow) return scalar(/(?:^|,)\s*url:\s*([^,]*)/.exec(flow[1])?.[1]);
  const start = lines.findIndex((l) => /^backend:\s*(#.*)?$/.test(l));
  if (start < 0) return undefined;
  for (const line of lines.slice(start + 1)) {
    if (/^\S/.test(line)) break;
    const m = /^\s+url:\s*(.*?)\s*$/.exec(line);
    if (m) return scalar(m[1]);
  }
  return undefined;
}

/** A YAML scalar as written: quoted (up to its closing quote), or plain (up to a comment). */
function scalar(text: string | undefined): string | undefined {
  let value = text?.trim() ?? "";
  if (/^["']/.test(value)) {
    const end = value.indexOf(value[0], 1);
    value = value.slice(1, end > 0 ? end : undefined);
  } else value = value.replace(/\s+#.*$/, "");
  return value || undefined;
}

/** The backend URL as the Pulumi CLI chooses it, normalised; undefined when none is set. */
export function backendUrl(sources: BackendSources): string | undefined {
  let url = sources.env.PULUMI_BACKEND_URL?.trim();
  if (!url) {
    for (const file of ["Pulumi.yaml", "Pulumi.yml"]) {
      const text = sources.readFile(path.join(sources.cwd, file));
      if (text !== undefined) {
        url = projectBackendUrl(text);
        break;
      }
    }
  }
  if (!url) {
    const pulumiHome = sources.env.PULUMI_HOME || path.join(sources.home, ".pulumi");
    const credentials = sources.readFile(path.join(pulumiHome, "credentials.json"));
    try {
      const current = credentials === undefined ? undefined : (JSON.parse(credentials) as { current?: unknown }).current;
      if (typeof current === "string" && current.trim()) url = current.trim();
    } catch {
      // An unreadable credentials file: no current login.
    }
  }
  return url ? normaliseBackendUrl(url, sources.cwd, sources.home) : undefined;
}

/**
 * One spelling per backend: `file://` paths absolute and without a trailing slash
 * (`~` is the home folder, a relative path is relative to the program's folder, as
 * for a CLI run in it), other URLs without trailing slashes. The options of the file
 * backend's storage library (`?metadata=skip`, ...) say how the same files are written,
 * not which: they are left out, so that adding one keeps the stack's identity.
 */
export function normaliseBackendUrl(url: string, cwd: string, home: string): string {
  const m = /^file:\/\/([^?]*)(?:\?(.*))?$/.exec(url);
  if (!m) return url.replace(/\/+$/, "");
  let file = m[1] || ".";
  if (file === "~" || file.startsWith("~/")) file = path.join(home, file.slice(1));
  file = path.resolve(cwd, file);
  const query = (m[2] ?? "").split("&").filter((p) => p !== "" && !FILEBLOB_OPTIONS.includes(decodeURIComponent(p.split("=")[0])));
  return `file://${file}${query.length ? `?${query.join("&")}` : ""}`;
}

/** The URL options of gocloud's fileblob, which Pulumi's file backend passes on. */
const FILEBLOB_OPTIONS = ["metadata", "no_tmp_dir", "create_dir", "dir_file_mode", "base_url", "secret_key_path"];

/**
 * `PROJECT/STACK@XXXXXXXX`: the stack part of every owner string (XXXXXXXX: a hash of
 * the backend URL and the organization); `PROJECT/STACK` when the backend is unknown.
 */
export function stackIdentity(project: string, stack: string, organization: string, url: string | undefined): string {
  if (url === undefined) return `${project}/${stack}`;
  return `${project}/${stack}@${createHash("sha256").update(`${url}\0${organization}`).digest("hex").slice(0, 8)}`;
}
