package main

// What a program depends on, read from its package.json and node_modules (no npm call):
// the answers to GetProgramDependencies (`pulumi about`), GetRequiredPackages and
// GetRequiredPlugins (the resource plugins its packages declare).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// packageJSON holds the fields of a package.json this host reads.
type packageJSON struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	// The "pulumi" section of a package that ships a resource plugin.
	Pulumi struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

func readPackageJSON(file string) (*packageJSON, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p packageJSON
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &p, nil
}

// projectRoot is the nearest folder at or above dir holding a package.json, as npm finds it.
func projectRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no package.json in %s or any folder above it: run `npm init -y` and `npm install nslab @pulumi/pulumi` there", abs)
		}
	}
}

// installedVersion is the version of package name that Node.js would load from dir (the
// first node_modules/NAME up the folder chain), or "" when none is installed.
func installedVersion(dir, name string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if p, err := readPackageJSON(filepath.Join(d, "node_modules", name, "package.json")); err == nil {
			return p.Version
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// runScriptOf is what require.resolve("@pulumi/pulumi/cmd/run") gives from dir, found
// without starting node: in the first node_modules/@pulumi/pulumi folder up the chain of
// dir's real path (the chain Node walks, which never looks in node_modules/node_modules), the file
// cmd/run/index.js, with symbolic links resolved. It answers only when Node's answer
// cannot differ: the package has no "exports" map, cmd/run is a folder with no
// package.json of its own and no cmd/run.js, .json, .node (or .ts, .cts, .mts) file
// beside it (which Node would take first), index.js is a file, and symbolic links are not asked to be kept (NODE_PRESERVE_SYMLINKS,
// --preserve-symlinks in NODE_OPTIONS). Otherwise ok is false and the caller asks node.
func runScriptOf(dir string) (script string, ok bool) {
	if os.Getenv("NODE_PRESERVE_SYMLINKS") != "" || strings.Contains(os.Getenv("NODE_OPTIONS"), "--preserve-symlinks") {
		return "", false
	}
	// Node walks up from the real path of the folder (its working directory), not the
	// path the folder was reached by.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", false
	}
	for d := abs; ; d = filepath.Dir(d) {
		if filepath.Base(d) != "node_modules" {
			pkg := filepath.Join(d, "node_modules", "@pulumi", "pulumi")
			if info, err := os.Stat(pkg); err == nil && info.IsDir() {
				data, err := os.ReadFile(filepath.Join(pkg, "package.json"))
				var fields map[string]json.RawMessage
				if err != nil || json.Unmarshal(data, &fields) != nil {
					return "", false // a half-installed package: Node's own answer
				}
				if _, has := fields["exports"]; has {
					return "", false
				}
				run := filepath.Join(pkg, "cmd", "run")
				// .ts, .cts and .mts: the extensions of a Node that strips types itself.
				for _, other := range []string{run, run + ".js", run + ".json", run + ".node", run + ".ts", run + ".cts", run + ".mts", filepath.Join(run, "package.json")} {
					if info, err := os.Stat(other); err == nil && (other != run || !info.IsDir()) {
						return "", false
					}
				}
				real, err := filepath.EvalSymlinks(filepath.Join(run, "index.js"))
				if err != nil {
					return "", false
				}
				if info, err := os.Stat(real); err != nil || !info.Mode().IsRegular() {
					return "", false
				}
				return real, true
			}
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// notInstalled is the version reported for a declared dependency that is not installed.
const notInstalled = "not installed"

// programDependencies lists the program's dependencies: those its package.json declares
// (dependencies and devDependencies) with the version installed for each, or, when
// transitive, every package installed under its node_modules. Sorted by name, then version.
func programDependencies(dir string, transitive bool) ([]*pulumirpc.DependencyInfo, error) {
	root, err := projectRoot(dir)
	if err != nil {
		return nil, err
	}
	var deps []*pulumirpc.DependencyInfo
	if transitive {
		seen := map[string]bool{}
		err := walkPackages(filepath.Join(root, "node_modules"), func(_ string, p *packageJSON) {
			if key := p.Name + "@" + p.Version; p.Name != "" && !seen[key] {
				seen[key] = true
				deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
			}
		})
		if err != nil {
			return nil, err
		}
	} else {
		p, err := readPackageJSON(filepath.Join(root, "package.json"))
		if err != nil {
			return nil, err
		}
		declared := map[string]bool{}
		for _, m := range []map[string]string{p.Dependencies, p.DevDependencies} {
			for name := range m {
				declared[name] = true
			}
		}
		for name := range declared {
			version := installedVersion(root, name)
			if version == "" {
				version = notInstalled
			}
			deps = append(deps, &pulumirpc.DependencyInfo{Name: name, Version: version})
		}
	}
	sort.Slice(deps, func(i, j int) bool {
		if deps[i].Name != deps[j].Name {
			return deps[i].Name < deps[j].Name
		}
		return deps[i].Version < deps[j].Version
	})
	return deps, nil
}

// walkPackages calls visit for every package installed under a node_modules folder
// (scoped ones included) and, recursively, under their own node_modules. Links are
// followed once each (a workspace or `npm link` may point back up the tree).
func walkPackages(nodeModules string, visit func(dir string, p *packageJSON)) error {
	visited := map[string]bool{}
	var walk func(nm string) error
	walk = func(nm string) error {
		real, err := filepath.EvalSymlinks(nm)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if visited[real] {
			return nil
		}
		visited[real] = true
		entries, err := os.ReadDir(nm)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue // .bin, .package-lock.json, .cache
			}
			if strings.HasPrefix(name, "@") {
				scoped, err := os.ReadDir(filepath.Join(nm, name))
				if err != nil {
					continue // a file named @something: not a scope
				}
				for _, s := range scoped {
					if err := visitPackage(filepath.Join(nm, name, s.Name()), visited, visit, walk); err != nil {
						return err
					}
				}
				continue
			}
			if err := visitPackage(filepath.Join(nm, name), visited, visit, walk); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(nodeModules)
}

func visitPackage(dir string, visited map[string]bool, visit func(string, *packageJSON), walk func(string) error) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || visited[real] {
		return nil // a dangling link, or a package seen through another link
	}
	p, err := readPackageJSON(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil // not a package (no or unreadable package.json): npm leaves such folders behind
	}
	visited[real] = true
	visit(dir, p)
	return walk(filepath.Join(dir, "node_modules"))
}

// pulumiSDK is the package whose copies must not be more than one in a program.
const pulumiSDK = "@pulumi/pulumi"

// requiredPackages lists the resource plugins that the program's installed packages
// declare (a "pulumi": {"resource": true} section in their package.json, as Pulumi's
// provider SDKs have). nslab itself needs none: its provider is a dynamic provider, run
// by @pulumi/pulumi. It also warns, on warn, when more than one copy of @pulumi/pulumi is
// installed: resources registered through different copies fail in the Automation API.
func requiredPackages(dir string, warn io.Writer) ([]*pulumirpc.PackageDependency, error) {
	root, err := projectRoot(dir)
	if err != nil {
		return nil, err
	}
	var packages []*pulumirpc.PackageDependency
	var sdkCopies []string
	var problems []error
	err = walkPackages(filepath.Join(root, "node_modules"), func(pkgDir string, p *packageJSON) {
		if p.Name == pulumiSDK {
			rel, _ := filepath.Rel(root, pkgDir)
			sdkCopies = append(sdkCopies, fmt.Sprintf("%s at %s", p.Version, rel))
		}
		if !p.Pulumi.Resource {
			return
		}
		dep, err := pluginOf(p)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", filepath.Join(pkgDir, "package.json"), err))
			return
		}
		packages = append(packages, dep)
	})
	if err != nil {
		return nil, err
	}
	if len(sdkCopies) > 1 {
		sort.Strings(sdkCopies)
		fmt.Fprintf(warn, "warning: %d copies of %s are installed (%s): resources registered through different copies "+
			"cannot be mixed in one program; install one version (nslab takes it as a peer dependency)\n",
			len(sdkCopies), pulumiSDK, strings.Join(sdkCopies, ", "))
	}
	// A malformed package is named, not fatal: the program may run without its plugin.
	for _, problem := range problems {
		fmt.Fprintf(warn, "warning: %v\n", problem)
	}
	sort.Slice(packages, func(i, j int) bool { return packages[i].Name < packages[j].Name })
	return packages, nil
}

// pluginOf is the resource plugin a package declares: its "pulumi" section's name and
// version, else the package's own (a package of the @pulumi scope gives its bare name).
func pluginOf(p *packageJSON) (*pulumirpc.PackageDependency, error) {
	name := p.Pulumi.Name
	if name == "" {
		if !strings.HasPrefix(p.Name, "@pulumi/") {
			return nil, fmt.Errorf(`package %q declares a resource plugin but no "name" for it in its "pulumi" section`, p.Name)
		}
		name = strings.TrimPrefix(p.Name, "@pulumi/")
	}
	version := p.Pulumi.Version
	if version == "" {
		version = p.Version
	}
	if version == "" {
		return nil, fmt.Errorf("package %q declares a resource plugin without a version", p.Name)
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	return &pulumirpc.PackageDependency{Name: name, Kind: "resource", Version: version, Server: p.Pulumi.Server}, nil
}
