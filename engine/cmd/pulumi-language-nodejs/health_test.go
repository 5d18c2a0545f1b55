package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The test binary doubles as the host: with this variable set it runs main().
const runHostEnv = "NSLAB_TEST_RUN_HOST"

func TestMain(m *testing.M) {
	if os.Getenv(runHostEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// engine is a stand-in for the Pulumi engine's gRPC server: its health service counts checks.
type engine struct {
	healthpb.UnimplementedHealthServer
	checks atomic.Int32
	server *grpc.Server
	addr   string
}

func (e *engine) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	e.checks.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func startEngine(t *testing.T) *engine {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{server: grpc.NewServer(), addr: listener.Addr().String()}
	healthpb.RegisterHealthServer(e.server, e)
	go func() { _ = e.server.Serve(listener) }()
	t.Cleanup(e.server.Stop)
	return e
}

// hostProcess is the host, started the way the engine starts it.
type hostProcess struct {
	cmd    *exec.Cmd
	client pulumirpc.LanguageRuntimeClient
	stderr *strings.Builder
	exited chan error
}

func startHost(t *testing.T, engineAddr string, env ...string) *hostProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], engineAddr)
	cmd.Env = append(append(os.Environ(), runHostEnv+"=1"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hostProcess{cmd: cmd, stderr: stderr, exited: make(chan error, 1)}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the port: %v (stderr %q)", err, stderr.String())
	}
	go func() { h.exited <- cmd.Wait() }()
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.client = pulumirpc.NewLanguageRuntimeClient(conn)
	return h
}

// waitFor polls cond until it holds; the limit only keeps a broken build from hanging CI.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func (h *hostProcess) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the host did not exit after its engine went away (stderr %q)", h.stderr.String())
	}
}

func TestHostExitsWhenTheEngineIsGone(t *testing.T) {
	e := startEngine(t)
	h := startHost(t, e.addr)
	if _, err := h.client.GetPluginInfo(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	// While the engine answers, the host keeps checking and keeps serving.
	waitFor(t, "two health checks", func() bool { return e.checks.Load() >= 2 })
	if _, err := h.client.GetPluginInfo(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatalf("the host stopped serving while its engine was alive: %v", err)
	}
	e.server.Stop()
	h.waitExit(t)
	if !strings.Contains(h.stderr.String(), "the engine at "+e.addr+" is gone") {
		t.Errorf("stderr %q does not say why it stopped", h.stderr.String())
	}
}

func TestHostStopsTheProgramWhenTheEngineIsGone(t *testing.T) {
	needTools(t, "node")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "program.pid")
	// In place of @pulumi/pulumi/cmd/run: a program that would run forever.
	runScript := filepath.Join(dir, "run.js")
	program := `require("fs").writeFileSync(process.argv.at(-1) === "." ? "` + pidFile + `" : "", String(process.pid));
setInterval(() => {}, 1000);`
	if err := os.WriteFile(runScript, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t)
	h := startHost(t, e.addr, "PULUMI_LANGUAGE_NODEJS_RUN_PATH="+runScript)
	go func() {
		_, _ = h.client.Run(context.Background(), &pulumirpc.RunRequest{
			Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
		})
	}()
	var pid int
	waitFor(t, "the program to start", func() bool {
		data, err := os.ReadFile(pidFile)
		if err != nil || len(data) == 0 {
			return false
		}
		pid, err = strconv.Atoi(string(data))
		return err == nil
	})
	e.server.Stop()
	h.waitExit(t)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the program (pid %d) outlived its host: kill(0) = %v", pid, err)
	}
}
