package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// writeJSON writes value as dir/package.json, making dir.
func writeJSON(t *testing.T, dir string, value any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type pkg = map[string]any

// userProject lays out a project as npm would install it: nslab with its own nested
// execa, @pulumi/pulumi hoisted, a declared dependency that is not installed, and a
// provider SDK that ships a resource plugin.
func userProject(t *testing.T) string {
	root := t.TempDir()
	writeJSON(t, root, pkg{
		"name":            "user-lab",
		"dependencies":    map[string]string{"nslab": "file:nslab-0.1.0.tgz", "@pulumi/pulumi": "^3.276.0", "@pulumi/random": "^4"},
		"devDependencies": map[string]string{"typescript": "5.9.3", "left-pad": "^1"},
	})
	nm := filepath.Join(root, "node_modules")
	writeJSON(t, filepath.Join(nm, "nslab"), pkg{"name": "nslab", "version": "0.1.0"})
	writeJSON(t, filepath.Join(nm, "nslab/node_modules/execa"), pkg{"name": "execa", "version": "9.6.0"})
	writeJSON(t, filepath.Join(nm, "execa"), pkg{"name": "execa", "version": "5.1.1"})
	writeJSON(t, filepath.Join(nm, "@pulumi/pulumi"), pkg{"name": "@pulumi/pulumi", "version": "3.276.0"})
	writeJSON(t, filepath.Join(nm, "@pulumi/random"), pkg{"name": "@pulumi/random", "version": "4.18.0", "pulumi": pkg{"resource": true}})
	writeJSON(t, filepath.Join(nm, "typescript"), pkg{"name": "typescript", "version": "5.9.3"})
	// What npm leaves behind that is not a package.
	if err := os.MkdirAll(filepath.Join(nm, ".bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(nm, "half-removed"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func names(deps []*pulumirpc.DependencyInfo) []string {
	var out []string
	for _, d := range deps {
		out = append(out, d.Name+"@"+d.Version)
	}
	return out
}

func TestProgramDependenciesDeclared(t *testing.T) {
	root := userProject(t)
	// The program may live in a subfolder (Pulumi.yaml main: src/): package.json is found above it.
	sub := filepath.Join(root, "src")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, sub} {
		deps, err := programDependencies(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(names(deps), " ")
		want := "@pulumi/pulumi@3.276.0 @pulumi/random@4.18.0 left-pad@not installed nslab@0.1.0 typescript@5.9.3"
		if got != want {
			t.Errorf("from %s:\n got %s\nwant %s", dir, got, want)
		}
	}
}

func TestProgramDependenciesTransitive(t *testing.T) {
	deps, err := programDependencies(userProject(t), true)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(deps), " ")
	want := "@pulumi/pulumi@3.276.0 @pulumi/random@4.18.0 execa@5.1.1 execa@9.6.0 nslab@0.1.0 typescript@5.9.3"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestProgramDependenciesWithoutPackageJSON(t *testing.T) {
	dir := t.TempDir()
	_, err := programDependencies(dir, false)
	if err == nil || !strings.Contains(err.Error(), "no package.json in "+dir) || !strings.Contains(err.Error(), "npm init") {
		t.Fatalf("want an error naming the folder and the fix, got %v", err)
	}
}

func TestLinkedPackagesAreWalkedOnce(t *testing.T) {
	// This checkout's own layout: node_modules/nslab links back to the project itself.
	root := userProject(t)
	if err := os.RemoveAll(filepath.Join(root, "node_modules/nslab")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(root, "node_modules/nslab")); err != nil {
		t.Fatal(err)
	}
	deps, err := programDependencies(root, true)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(deps), " ")
	want := "@pulumi/pulumi@3.276.0 @pulumi/random@4.18.0 execa@5.1.1 typescript@5.9.3 user-lab@"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestRequiredPackages(t *testing.T) {
	root := userProject(t)
	var warnings bytes.Buffer
	packages, err := requiredPackages(root, &warnings)
	if err != nil {
		t.Fatal(err)
	}
	if len(packages) != 1 || packages[0].Name != "random" || packages[0].Version != "v4.18.0" || packages[0].Kind != "resource" {
		t.Fatalf("want the random resource plugin v4.18.0, got %v", packages)
	}
	if warnings.Len() != 0 {
		t.Errorf("one copy of @pulumi/pulumi: want no warning, got %q", warnings.String())
	}

	// A third-party plugin package names its plugin; one that does not is reported, not fatal.
	writeJSON(t, filepath.Join(root, "node_modules/@acme/net"), pkg{"name": "@acme/net", "version": "1.2.3",
		"pulumi": pkg{"resource": true, "name": "acmenet", "server": "https://plugins.example/acme"}})
	writeJSON(t, filepath.Join(root, "node_modules/broken"), pkg{"name": "broken", "version": "1.0.0", "pulumi": pkg{"resource": true}})
	// The failure: nslab with a copy of @pulumi/pulumi of its own.
	writeJSON(t, filepath.Join(root, "node_modules/nslab/node_modules/@pulumi/pulumi"), pkg{"name": "@pulumi/pulumi", "version": "3.260.0"})
	warnings.Reset()
	packages, err = requiredPackages(root, &warnings)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range packages {
		got = append(got, p.Name+"@"+p.Version+" "+p.Server)
	}
	if strings.Join(got, ", ") != "acmenet@v1.2.3 https://plugins.example/acme, random@v4.18.0 " {
		t.Errorf("got %v", got)
	}
	for _, want := range []string{
		`package "broken" declares a resource plugin but no "name"`,
		"2 copies of @pulumi/pulumi are installed (3.260.0 at node_modules/nslab/node_modules/@pulumi/pulumi, 3.276.0 at node_modules/@pulumi/pulumi)",
	} {
		if !strings.Contains(warnings.String(), want) {
			t.Errorf("warnings %q lack %q", warnings.String(), want)
		}
	}
}

func TestPackageManagerOption(t *testing.T) {
	for _, tc := range []struct {
		option string
		want   string
		err    string
	}{
		{"", "npm", ""},
		{"auto", "npm", ""},
		{"npm", "npm", ""},
		{"yarn", "", `packagemanager: "yarn" is not supported by nslab's language host, only npm`},
	} {
		info := programInfo(t, t.TempDir(), map[string]any{"packagemanager": tc.option})
		got, err := packageManagerOf(info)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%q: got %q, %v", tc.option, got, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: want error %q, got %v", tc.option, tc.err, err)
		}
	}
}

// pulumiWithRunner lays out node_modules/@pulumi/pulumi under root with cmd/run/index.js
// and the given package.json fields.
func pulumiWithRunner(t *testing.T, root string, fields pkg) string {
	t.Helper()
	dir := filepath.Join(root, "node_modules", "@pulumi", "pulumi")
	writeJSON(t, dir, fields)
	run := filepath.Join(dir, "cmd", "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "index.js"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(run, "index.js")
}

func TestRunScriptFoundWithoutNode(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi", "version": "3.260.0"})
	program := filepath.Join(root, "infra", "lab")
	if err := os.MkdirAll(program, 0o755); err != nil {
		t.Fatal(err)
	}
	// The program reached through a link from a folder with an @pulumi/pulumi of its own:
	// Node walks up from the real path, so the link's neighbour is not the answer.
	elsewhere := t.TempDir()
	pulumiWithRunner(t, elsewhere, pkg{"name": "@pulumi/pulumi", "version": "3.0.0"})
	viaLink := filepath.Join(elsewhere, "lab")
	if err := os.Symlink(program, viaLink); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, program, viaLink} {
		got, ok := runScriptOf(dir)
		if !ok || got != want {
			t.Errorf("from %s: got %q %v, want %q", dir, got, ok, want)
		}
		// What node itself answers, when it is there.
		if node, err := exec.LookPath("node"); err == nil {
			cmd := exec.Command(node, "-e", "console.log(require.resolve('@pulumi/pulumi/cmd/run'))")
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(out)) != got {
				t.Errorf("from %s: node resolves %q, the host %q", dir, strings.TrimSpace(string(out)), got)
			}
		}
	}
	// A linked package (npm link, a workspace): the real path, as Node gives it.
	linked := t.TempDir()
	if err := os.MkdirAll(filepath.Join(linked, "node_modules", "@pulumi"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "node_modules", "@pulumi", "pulumi"), filepath.Join(linked, "node_modules", "@pulumi", "pulumi")); err != nil {
		t.Fatal(err)
	}
	if got, ok := runScriptOf(linked); !ok || got != want {
		t.Errorf("linked: got %q %v, want %q", got, ok, want)
	}
}

func TestRunScriptLeftToNodeWhenReadingCannotSettleIt(t *testing.T) {
	cases := map[string]func(t *testing.T, root string){
		"an exports map": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi", "exports": pkg{"./cmd/run": "./cmd/run/index.js"}})
		},
		"a cmd/run.ts beside the folder": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			if err := os.WriteFile(filepath.Join(root, "node_modules/@pulumi/pulumi/cmd/run.ts"), []byte("\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"an index.js that is a folder": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			index := filepath.Join(root, "node_modules/@pulumi/pulumi/cmd/run/index.js")
			if err := os.Remove(index); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(index, 0o755); err != nil {
				t.Fatal(err)
			}
		},
		"a cmd/run.js beside the folder": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			if err := os.WriteFile(filepath.Join(root, "node_modules/@pulumi/pulumi/cmd/run.js"), []byte("\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"a package.json in cmd/run": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			writeJSON(t, filepath.Join(root, "node_modules/@pulumi/pulumi/cmd/run"), pkg{"main": "other.js"})
		},
		"no package.json": func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			if err := os.Remove(filepath.Join(root, "node_modules/@pulumi/pulumi/package.json")); err != nil {
				t.Fatal(err)
			}
		},
		"no @pulumi/pulumi at all": func(t *testing.T, root string) {},
	}
	for _, env := range []string{"NODE_PRESERVE_SYMLINKS=1", "NODE_OPTIONS=--max-old-space-size=512 --preserve-symlinks"} {
		name, value, _ := strings.Cut(env, "=")
		cases[env] = func(t *testing.T, root string) {
			pulumiWithRunner(t, root, pkg{"name": "@pulumi/pulumi"})
			t.Setenv(name, value)
		}
	}
	for name, layout := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			layout(t, root)
			if got, ok := runScriptOf(root); ok {
				t.Errorf("got %q, want node to be asked", got)
			}
		})
	}
}
