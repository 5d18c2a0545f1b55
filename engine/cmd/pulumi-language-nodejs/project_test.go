package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

func programInfo(t *testing.T, dir string, options map[string]any) *pulumirpc.ProgramInfo {
	t.Helper()
	opts, err := structpb.NewStruct(options)
	if err != nil {
		t.Fatal(err)
	}
	return &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: ".", Options: opts}
}

// serve starts the host's gRPC server, as main does, and returns a client to it.
func serve(t *testing.T) pulumirpc.LanguageRuntimeClient {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(server, &host{})
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient(listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pulumirpc.NewLanguageRuntimeClient(conn)
}

// needTools skips a test when node or npm is not on PATH (CI puts .tools/bin there).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH (run scripts/setup and put .tools/bin first on PATH)", tool)
		}
	}
}

func TestAbout(t *testing.T) {
	needTools(t, "node", "npm")
	root := userProject(t)
	// A real TypeScript is not needed to report its version: its package.json is what is read.
	about, err := serve(t).About(context.Background(), &pulumirpc.AboutRequest{Info: programInfo(t, root, nil)})
	if err != nil {
		t.Fatal(err)
	}
	node, _ := exec.LookPath("node")
	if about.Executable != node || !strings.HasPrefix(about.Version, "v") {
		t.Errorf("node: got %q %q, want %q v...", about.Executable, about.Version, node)
	}
	npmVersion, err := exec.Command("npm", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"packagemanager": "npm", "packagemanagerVersion": strings.TrimSpace(string(npmVersion)), "typescriptVersion": "5.9.3"}
	for k, v := range want {
		if about.Metadata[k] != v {
			t.Errorf("metadata %s: got %q, want %q", k, about.Metadata[k], v)
		}
	}
}

func TestGetProgramDependenciesRPC(t *testing.T) {
	root := userProject(t)
	client := serve(t)
	resp, err := client.GetProgramDependencies(context.Background(), &pulumirpc.GetProgramDependenciesRequest{Info: programInfo(t, root, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(resp.Dependencies), " "); !strings.Contains(got, "nslab@0.1.0") || !strings.Contains(got, "@pulumi/pulumi@3.276.0") {
		t.Errorf("got %s", got)
	}
	_, err = client.GetProgramDependencies(context.Background(), &pulumirpc.GetProgramDependenciesRequest{Info: programInfo(t, t.TempDir(), nil)})
	if err == nil || !strings.Contains(err.Error(), "no package.json") {
		t.Errorf("a folder without package.json: want an error saying so, got %v", err)
	}
}

func TestGetRequiredPackagesAndPluginsRPC(t *testing.T) {
	root := userProject(t)
	client := serve(t)
	packages, err := client.GetRequiredPackages(context.Background(), &pulumirpc.GetRequiredPackagesRequest{Info: programInfo(t, root, nil)})
	if err != nil {
		t.Fatal(err)
	}
	plugins, err := client.GetRequiredPlugins(context.Background(), &pulumirpc.GetRequiredPluginsRequest{Info: programInfo(t, root, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(packages.Packages) != 1 || packages.Packages[0].Name != "random" || len(plugins.Plugins) != 1 || plugins.Plugins[0].Version != "v4.18.0" {
		t.Errorf("got packages %v, plugins %v", packages.Packages, plugins.Plugins)
	}
}

// installOutput runs InstallDependencies and collects what the host streamed.
func installOutput(t *testing.T, client pulumirpc.LanguageRuntimeClient, info *pulumirpc.ProgramInfo) (stdout, stderr string, err error) {
	t.Helper()
	stream, err := client.InstallDependencies(context.Background(), &pulumirpc.InstallDependenciesRequest{Info: info})
	if err != nil {
		return "", "", err
	}
	var out, errOut strings.Builder
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), errOut.String(), nil
		}
		if err != nil {
			return out.String(), errOut.String(), err
		}
		out.Write(msg.Stdout)
		errOut.Write(msg.Stderr)
	}
}

func TestInstallDependenciesRunsNpm(t *testing.T) {
	needTools(t, "node", "npm")
	// A dependency from a local folder: npm installs it without any registry.
	base := t.TempDir()
	writeJSON(t, filepath.Join(base, "lib"), pkg{"name": "lab-lib", "version": "1.0.0"})
	project := filepath.Join(base, "project")
	writeJSON(t, project, pkg{"name": "user-lab", "private": true, "dependencies": map[string]string{"lab-lib": "file:../lib"}})
	t.Setenv("npm_config_cache", filepath.Join(base, "npm-cache"))
	t.Setenv("npm_config_offline", "true")
	t.Setenv("npm_config_update_notifier", "false")
	t.Setenv("npm_config_audit", "false")

	client := serve(t)
	stdout, stderr, err := installOutput(t, client, programInfo(t, project, nil))
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "Installing dependencies in "+project+" with npm") || !strings.Contains(stdout, "added 1 package") ||
		!strings.Contains(stdout, "Finished installing dependencies") {
		t.Errorf("npm's output was not streamed: %q (stderr %q)", stdout, stderr)
	}
	if v := installedVersion(project, "lab-lib"); v != "1.0.0" {
		t.Errorf("lab-lib: installed %q, want 1.0.0", v)
	}

	// A failing install is an error naming the command and the folder, with npm's own message streamed.
	if err := os.WriteFile(filepath.Join(project, "package.json"), []byte(`{ "name": "user-lab", `), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = installOutput(t, client, programInfo(t, project, nil))
	if err == nil || !strings.Contains(err.Error(), "`npm install` in "+project+" failed") {
		t.Errorf("want the failure named, got %v", err)
	}
	if !strings.Contains(stderr, "npm error") {
		t.Errorf("npm's error was not streamed: %q", stderr)
	}

	// Another package manager is refused, not silently replaced by npm.
	_, _, err = installOutput(t, client, programInfo(t, project, map[string]any{"packagemanager": "pnpm"}))
	if err == nil || !strings.Contains(err.Error(), `"pnpm" is not supported`) {
		t.Errorf("want pnpm refused, got %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(project, "pnpm-lock.yaml")); statErr == nil {
		t.Error("pnpm ran")
	}
}

// fakeNpm puts an npm command first on PATH: a script that prints printed, inside a
// package folder whose package.json says version (none when version is "").
func fakeNpm(t *testing.T, version, printed string) {
	t.Helper()
	dir := t.TempDir()
	pkgDir := filepath.Join(dir, "lib", "node_modules", "npm")
	if version != "" {
		writeJSON(t, pkgDir, pkg{"name": "npm", "version": version})
	}
	if err := os.MkdirAll(filepath.Join(pkgDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(pkgDir, "bin", "npm-cli.js")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho "+printed+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(script, filepath.Join(bin, "npm")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestAboutNpmVersion(t *testing.T) {
	needTools(t, "node")
	cases := []struct{ name, packageVersion, printed, want string }{
		// The package's version is reported; the command, which would print another, is not run.
		{"read from npm's package", "10.99.1", "7.0.0", "10.99.1"},
		// An npm outside a package named npm: asked.
		{"asked of an npm outside a package", "", "7.0.0", "7.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := userProject(t)
			fakeNpm(t, c.packageVersion, c.printed)
			about, err := serve(t).About(context.Background(), &pulumirpc.AboutRequest{Info: programInfo(t, root, nil)})
			if err != nil {
				t.Fatal(err)
			}
			if got := about.Metadata["packagemanagerVersion"]; got != c.want {
				t.Errorf("npm version: got %q, want %q", got, c.want)
			}
		})
	}
}
