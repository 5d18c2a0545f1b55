package main

// The RPCs about the program's project rather than its run: About and
// GetProgramDependencies (`pulumi about`), InstallDependencies (`pulumi install`,
// `pulumi new`), GetRequiredPackages and GetRequiredPlugins.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// programDirOf is the program's folder: from ProgramInfo, or the deprecated pwd field
// older engines send.
func programDirOf(info *pulumirpc.ProgramInfo, pwd string) string {
	if info != nil && info.GetProgramDirectory() != "" {
		return info.GetProgramDirectory()
	}
	if pwd != "" {
		return pwd
	}
	dir, _ := os.Getwd() // the engine starts the host in the program's folder
	return dir
}

// packageManagerOf reads the `packagemanager` runtime option of Pulumi.yaml. This host
// installs with npm only; any other manager is refused by name rather than ignored.
func packageManagerOf(info *pulumirpc.ProgramInfo) (string, error) {
	manager := "npm"
	if info != nil && info.GetOptions() != nil {
		if value, ok := info.GetOptions().AsMap()["packagemanager"].(string); ok && value != "" && value != "auto" {
			manager = value
		}
	}
	if manager != "npm" {
		return "", fmt.Errorf("runtime option packagemanager: %q is not supported by nslab's language host, only npm: "+
			"remove the option from Pulumi.yaml, or run `%s install` yourself", manager, manager)
	}
	return manager, nil
}

// About tells `pulumi about` which node runs programs, and the package manager and
// TypeScript versions a program in this folder gets.
func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	dir := programDirOf(req.GetInfo(), "")
	manager, err := packageManagerOf(req.GetInfo())
	if err != nil {
		return nil, err
	}
	nodePath, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("could not find node on PATH: install Node.js 22 or newer")
	}
	// Each answer is best effort (a missing npm or TypeScript is not an error). The CLI
	// asks on every update, beside the update itself, so the versions of npm and
	// TypeScript are read from their package.json rather than by starting them (npm's
	// start alone took about 0.3 s of CPU); only node is asked, which is quick.
	var nodeVersion string
	cmd := exec.CommandContext(ctx, nodePath, "--version")
	cmd.Dir = dir
	if out, err := cmd.Output(); err == nil {
		nodeVersion = strings.TrimSpace(string(out))
	}
	managerVersion := npmVersion(ctx, manager, dir)
	// The TypeScript the program would load, found from its folder's real path, as Node
	// walks it (not a tsc on PATH).
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	tsVersion := installedVersion(dir, "typescript")
	metadata := map[string]string{"packagemanager": manager}
	if managerVersion != "" {
		metadata["packagemanagerVersion"] = managerVersion
	}
	if tsVersion != "" {
		metadata["typescriptVersion"] = tsVersion
	}
	return &pulumirpc.AboutResponse{Executable: nodePath, Version: nodeVersion, Metadata: metadata}, nil
}

// npmVersion is the version of the npm on PATH: read from the package.json of the npm
// package its command links to (bin/npm-cli.js, as Node.js installs it), else what
// `npm --version` prints, else "".
func npmVersion(ctx context.Context, manager, dir string) string {
	path, err := exec.LookPath(manager)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		for d := filepath.Dir(real); filepath.Dir(d) != d; d = filepath.Dir(d) {
			if p, err := readPackageJSON(filepath.Join(d, "package.json")); err == nil {
				if p.Name == manager && p.Version != "" {
					return p.Version
				}
				break // the nearest package.json is not npm's: ask npm
			}
		}
	}
	cmd := exec.CommandContext(ctx, manager, "--version")
	cmd.Dir = dir
	if out, err := cmd.Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return ""
}

// GetProgramDependencies lists what the program's package.json declares, with the
// versions installed (or every installed package, when transitive).
func (h *host) GetProgramDependencies(_ context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	//nolint:staticcheck // the deprecated pwd is what older engines send
	deps, err := programDependencies(programDirOf(req.GetInfo(), req.GetPwd()), req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// GetRequiredPackages lists the resource plugins the program's packages declare (none
// for nslab, whose provider is dynamic); it warns on stderr about two @pulumi/pulumi copies.
func (h *host) GetRequiredPackages(_ context.Context, req *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	packages, err := requiredPackages(programDirOf(req.GetInfo(), ""), os.Stderr)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: packages}, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages, for engines that still ask it.
func (h *host) GetRequiredPlugins(_ context.Context, req *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	//nolint:staticcheck // the deprecated pwd is what older engines send
	packages, err := requiredPackages(programDirOf(req.GetInfo(), req.GetPwd()), os.Stderr)
	if err != nil {
		return nil, err
	}
	plugins := make([]*pulumirpc.PluginDependency, 0, len(packages))
	for _, p := range packages {
		plugins = append(plugins, &pulumirpc.PluginDependency{Name: p.Name, Kind: p.Kind, Version: p.Version, Server: p.Server})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

// InstallDependencies runs `npm install` in the program's folder, streaming its output to
// the engine as it comes (`pulumi install`, `pulumi new`). npm's own settings apply
// (npm_config_* in the environment, .npmrc), so an offline install works the npm way.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]) error {
	manager, err := packageManagerOf(req.GetInfo())
	if err != nil {
		return err
	}
	//nolint:staticcheck // the deprecated directory is what older engines send
	dir := programDirOf(req.GetInfo(), req.GetDirectory())
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	if req.GetUseLanguageVersionTools() {
		fmt.Fprintln(stdout, "nslab's language host does not switch Node.js versions (.nvmrc, .node-version): using node from PATH")
	}
	fmt.Fprintf(stdout, "Installing dependencies in %s with %s...\n\n", dir, manager)
	cmd := exec.CommandContext(server.Context(), manager, "install")
	cmd.Dir = dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("`%s install` in %s failed: %w", manager, dir, err)
	}
	fmt.Fprintln(stdout, "\nFinished installing dependencies")
	return closer.Close()
}
