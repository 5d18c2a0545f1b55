package main

import (
	"context"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
)

// engineHealthInterval is how often the engine's gRPC health service is asked whether it
// is still there. Pulumi's own host asks every 5 minutes; a lab's engine is local, one
// check costs well under a millisecond, and a host outliving its engine by minutes keeps
// a program (and its kernel work) running with nobody to report to.
const engineHealthInterval = 2 * time.Second

// watchEngine returns a channel closed once the engine at address stops answering
// health checks (a refused connection: the engine exited or was killed). An engine
// without a health service counts as alive. No address: never closed.
func watchEngine(address string, interval time.Duration) (<-chan struct{}, error) {
	gone := make(chan struct{})
	if address == "" {
		return gone, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := rpcutil.Healthcheck(ctx, address, interval, cancel); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		<-ctx.Done()
		close(gone)
	}()
	return gone, nil
}
