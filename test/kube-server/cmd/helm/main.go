// Command helm is upstream Helm v4, built from the module proxy so that the
// chart's tests (helm lint, helm template) need no helm on PATH. Its main is
// helm.sh/helm/v4's cmd/helm, which Go cannot import (package main); this is
// that main, unchanged in what it does. It is a module of its own (go.mod
// beside this file): Helm v4 is released against a newer client-go, grpc and
// OpenTelemetry than k8s.io/kubernetes v1.36.3, and one build list would move
// the test API server onto versions it was not released with.
package main

import (
	"errors"
	"log/slog"
	"os"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	"helm.sh/helm/v4/pkg/kube"

	// the client auth plugins (exec, OIDC), as upstream registers them
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	// the field manager of what helm applies, named "helm" whatever the binary is called, as upstream does
	kube.ManagedFieldsManager = "helm"
	cmd, err := helmcmd.NewRootCmd(os.Stdout, os.Args[1:], helmcmd.SetupLogging)
	if err != nil {
		slog.Warn("command failed", slog.Any("error", err))
		os.Exit(1)
	}
	if err := cmd.Execute(); err != nil {
		if cerr, ok := errors.AsType[helmcmd.CommandError](err); ok {
			os.Exit(cerr.ExitCode)
		}
		os.Exit(1)
	}
}
