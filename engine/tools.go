//go:build tools

// Package tools pins the Pulumi CLI so that `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi`
// works from this module (see scripts/setup).
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
