// Command pulumi-language-nodejs is a small Node.js language host for the Pulumi
// engine, used when the upstream host cannot be built (its Go module is not served by
// the module proxy this project can reach).
//
// It implements what the CLI asks of a language host in everyday use: GetPluginInfo,
// Run (start `@pulumi/pulumi/cmd/run` with node, with the arguments and environment the
// upstream host uses), About and GetProgramDependencies (`pulumi about`),
// InstallDependencies (`npm install` in the program's folder: `pulumi install`,
// `pulumi new`), GetRequiredPackages and GetRequiredPlugins (resource plugins declared in
// the program's node_modules). Code generation, `pulumi convert`, `pulumi package`,
// policy packs, plugins written in Node.js and debugging stay Unimplemented.
//
// Like Pulumi's own plugins, it checks that the engine that started it is still there
// (gRPC health checks every couple of seconds) and exits when it is gone, stopping the
// program it runs, so that a killed `pulumi` leaves no host behind.
//
// Launch contract (pkg/resource/plugin): the engine runs
//
//	pulumi-language-nodejs [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS
//
// with cwd = the program directory, and reads the gRPC port from the first line
// printed on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/emptypb"
)

// exitCodeBail is what @pulumi/pulumi/cmd/run exits with after it has already shown
// the user an actionable message: the engine must not print a second error.
const exitCodeBail = 32

// runScriptModule is the module the program runner is resolved from, relative to the
// program directory (overridable like upstream's PULUMI_LANGUAGE_NODEJS_RUN_PATH).
const runScriptModule = "@pulumi/pulumi/cmd/run"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	tracing       string
	// Programs being run (Run calls in progress).
	running sync.WaitGroup
}

func main() {
	engineAddress, tracing := parseArgs(os.Args[1:])
	if engineAddress == "" {
		fmt.Fprintln(os.Stderr, "usage: pulumi-language-nodejs [--tracing URL] ENGINE_ADDRESS")
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: cannot listen: %v\n", err)
		os.Exit(1)
	}
	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(400*1024*1024),
		// No server keepalive pings. With grpc-go's default (a ping every 2 h), the server
		// also sets TCP_USER_TIMEOUT (20 s) on each connection, and under load the engine's
		// long-running Run call was cut with "connection timed out" about 60 s into a
		// 1000-host `pulumi up` (6 runs of 6). The engine is a local parent process; a dead
		// engine is noticed by the health check below (watchEngine).
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Duration(math.MaxInt64)}),
	)
	h := &host{engineAddress: engineAddress, tracing: tracing}
	pulumirpc.RegisterLanguageRuntimeServer(server, h)
	engineGone, err := watchEngine(engineAddress, engineHealthInterval)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: cannot check the engine at %s: %v\n", engineAddress, err)
		os.Exit(1)
	}
	go func() {
		<-engineGone
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: the engine at %s is gone: stopping\n", engineAddress)
		// Cancels every call's context: a running program gets SIGINT, then SIGKILL.
		server.Stop()
	}()
	// The engine reads exactly one line: the port.
	fmt.Printf("%d\n", listener.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
	// Stop does not wait for the calls it cancelled: wait for their processes to end.
	h.running.Wait()
}

// parseArgs tolerates the engine's logging flags (-v=N, --logtostderr) and takes the
// last positional argument as the engine address.
func parseArgs(args []string) (engineAddress, tracing string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "-tracing" || arg == "--tracing":
			if i+1 < len(args) {
				tracing = args[i+1]
				i++
			}
		case strings.HasPrefix(arg, "-tracing=") || strings.HasPrefix(arg, "--tracing="):
			tracing = arg[strings.Index(arg, "=")+1:]
		case strings.HasPrefix(arg, "-"):
			// logging flags: ignored
		default:
			engineAddress = arg
		}
	}
	return engineAddress, tracing
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	h.running.Add(1)
	defer h.running.Done()
	info := req.GetInfo()
	programDir := req.GetPwd()
	entryPoint := req.GetProgram()
	rootDir := ""
	if info != nil {
		programDir, entryPoint, rootDir = info.GetProgramDirectory(), info.GetEntryPoint(), info.GetRootDirectory()
	}
	nodePath, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find node on PATH: install Node.js 22 or newer"}, nil
	}
	runPath := os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH")
	if runPath == "" {
		runPath = runScriptModule
	}
	runScript, err := resolveModule(ctx, nodePath, programDir, runPath)
	if err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf(
			"cannot find %s from %s: install the project's dependencies (npm ci): %v", runPath, programDir, err)}, nil
	}

	options := map[string]interface{}{}
	if info != nil && info.GetOptions() != nil {
		options = info.GetOptions().AsMap()
	}
	args := nodeArgs(options)
	args = append(args, runScript, "--monitor", req.GetMonitorAddress(), "--engine", h.engineAddress)
	args = appendIfSet(args, "--organization", req.GetOrganization())
	args = appendIfSet(args, "--project", req.GetProject())
	args = appendIfSet(args, "--root-directory", rootDir)
	args = appendIfSet(args, "--stack", req.GetStack())
	args = appendIfSet(args, "--pwd", programDir)
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	args = append(args, "--parallel", strconv.Itoa(int(req.GetParallel())))
	args = appendIfSet(args, "--tracing", h.tracing)
	args = append(args, entryPoint)
	args = append(args, req.GetArgs()...)

	env, err := runEnv(req, options)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, nodePath, args...)
	cmd.Dir = programDir
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == exitCodeBail {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// resolveModule is where a module resolves from the program directory. The program
// runner (@pulumi/pulumi/cmd/run) is found by reading the folders, as Node would find it
// (see runScriptOf); anything else, or a layout that reading cannot settle, is asked of
// node, which costs a process start on the way to the program.
func resolveModule(ctx context.Context, nodePath, dir, module string) (string, error) {
	if module == runScriptModule {
		if script, ok := runScriptOf(dir); ok {
			return script, nil
		}
	}
	cmd := exec.CommandContext(ctx, nodePath, "-e", "console.log(require.resolve(process.argv[1]))", module)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(exitErr.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// nodeArgs honours the `nodeargs` runtime option of Pulumi.yaml.
func nodeArgs(options map[string]interface{}) []string {
	raw, _ := options["nodeargs"].(string)
	return strings.Fields(raw)
}

// runEnv passes config and the TypeScript options the way @pulumi/pulumi/cmd/run reads them.
func runEnv(req *pulumirpc.RunRequest, options map[string]interface{}) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON))
	typescript := true
	if value, ok := options["typescript"].(bool); ok {
		typescript = value
	}
	if typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if tsconfig, ok := options["tsconfig"].(string); ok && tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+tsconfig)
	}
	return env, nil
}

func appendIfSet(args []string, flag, value string) []string {
	if value == "" {
		return args
	}
	return append(args, flag, value)
}
